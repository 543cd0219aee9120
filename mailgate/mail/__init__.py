"""Pure mail logic: bytes and header values in, plain values out; no database.

- checks before parsing: `precheck`;
- parsing (`parse.parse_message`, into the values of `parsed`): `tree` (with
  `setaside`), `senders`, `bodies` (with `charsets`, `words`, `uudecode`,
  `sanitize`), `files` (with `sniff`: `archives`, `ole`, `pdf`; `names`), `reports`;
- the steps after it: `guard`, `authres`, `route`, `tokens` and `threads`,
  `quotes`, `commands`, `attachments` (the accept policy), `language`;
- small helpers for header values: `headers`.
"""
