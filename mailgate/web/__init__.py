"""The customers' status pages: signed links (`links.py`, imported by the mail
that carries them) and the Starlette app that serves them (`app.py`, `pages.py`),
run by `mailgate run` under uvicorn (`server.py`). Nothing here is imported on
package import, so mail code that only signs links never loads Starlette."""
