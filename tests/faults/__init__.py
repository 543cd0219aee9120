"""Fault harness: `mailgate run` under real faults, counting what it kept (issue 14).

Each scenario runs a real `mailgate run` (its own process group) on a private
PostgreSQL cluster (initdb in a temp folder on a free loopback port, run as the
`postgres` user, fsync on; the shared server on 5432 is never touched), drives
SMTP load as a sending MTA would (K sessions, unique Message-IDs, everything not
answered 250 offered again), injects one kind of fault N times at random
moments, lets everything drain, and counts.

    python -m tests.faults --cycles 200            # the long run: one table
    python -m tests.faults --cycles 3 --only kill9,pg-stop --keep
    pytest -m slow tests/faults                    # CI's short run (2 cycles each)

Scenarios (`--outage T`, default 3 s, is how long a fault lasts):

- `kill9`: `kill -9` of the daemon's process group (daemon, forkserver, workers)
  at a random moment once mail flows, then a restart; file transport.
- `kill9-relay`: the same with the SMTP relay transport. A kill between the
  relay's 250 and our record may send again, which RFC 5321 cannot prevent:
  allowed, at most the sender's in-flight count (`[outbound] workers`) a kill.
- `pg-stop` / `pg-immediate`: PostgreSQL stopped for T s (`pg_ctl stop -m fast`,
  or `-m immediate`: a crash, with recovery at the restart).
- `pg-sigstop`: every PostgreSQL process SIGSTOPped for T s (a stalled database:
  connections hang instead of failing).
- `dovecot-kill`: a backlog APPENDed to Dovecot, Dovecot's process group
  SIGKILLed while the poller works through it, restarted on the same port.
- `disk-full`: storage (`[storage] dir`, with the file transport's outbox) on a
  16 MiB tmpfs, filled to ENOSPC for T s.
- `disk-readonly`: the same storage read-only (EROFS) for T s.
- `relay-down-slow`: the relay's port closed for T s, then 1 s per DATA for T s.
- `worker-kill`: SIGKILL of one delivery worker (one that is running, if any),
  as the OOM killer does.

Columns of the table:
- sent / acked: distinct messages offered / answered 250 (for `dovecot-kill`:
  APPENDed to the mailbox, each of which is a promise kept by the server);
- 5xx: messages refused for good (their MTA would bounce them): a fault of ours
  must answer 4xx;
- lost: acked but not stored as an inbound message (quarantined counts as lost:
  no ticket, no acknowledgement); dup: stored more than once (a second ticket);
- outbox lost: a ticket with no outgoing mail queued, a row ended `failed` or
  `bounced` (nothing here refuses mail for good), or a row `sent` that never
  reached the relay or the outbox folder;
- twice: extra deliveries of one outgoing Message-ID (the relay counts; for the
  file transport a pickup thread takes every `.eml` away at once, so a second
  delivery is a second file);
- stuck: outbox rows still `pending`/`sending` after the drain timeout;
- drain s: from the end of the last fault until every message had its answer,
  every row was final and every sent mail had arrived (`timeout` if never).
Notes under the table name the evidence (quarantine reasons, failed rows, ERROR
lines in the daemon's log). The folder with each scenario's `daemon.log` and
storage is kept when a goal was missed (or with `--keep`).

Settings the harness chooses: `[outbound] retry_base = 2`, `send_interval = 2`
(the drain is measured in seconds, not in the production backoff of a minute);
the acknowledgement brakes (`ack_limit_*`) lifted so that every ticket gets
exactly one outgoing row; two delivery workers; no agents.

How each fault is made, and what this machine must allow:
- PostgreSQL binaries under /usr/lib/postgresql/*/bin (or `MAILGATE_PG_BIN`);
  as root they run through `runuser -u postgres`.
- Dovecot (`scripts/install-test-deps`), as in tests/servers/dovecot.py.
- The tiny disk is a real tmpfs (`mount -t tmpfs -o size=16m`): full is a file
  written until ENOSPC; read-only is a read-only bind mount over the storage
  folder (`remount,ro` of the tmpfs itself is refused with EBUSY while the daemon
  holds a file open for writing). Mounting needs CAP_SYS_ADMIN: without it the
  two disk scenarios report "not available here: <reason>" instead of running.
"""
