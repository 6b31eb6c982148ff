"""The argument parser of ``debrid``: every subcommand, its options, and the exit codes."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from engine.cli import _auth, _daemon, _fake_server, _jobs
from engine.cli._errors import BAD_INPUT, EXIT_CODES_HELP, CliError

__all__ = ["build_parser"]


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are ``CliError`` (exit 2, JSON with ``--json``)."""

    def error(self, message: str) -> NoReturn:
        """Raise instead of printing and exiting, so ``--json`` can shape the error."""
        raise CliError(BAD_INPUT, "usage", f"{self.prog}: {message}\n{self.format_usage()}".strip())


def _globals(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The global options; on a subcommand they default to "not given" (SUPPRESS), so
    ``debrid --json list`` and ``debrid list --json`` mean the same."""
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument("--config", metavar="PATH", default=default,
                        help="the config file (else $DEBRID_CONFIG, else the user config dir)")
    parser.add_argument("--daemon", metavar="URL", default=default,
                        help="talk to this daemon (else $DEBRID_DAEMON_URL, else the config's "
                             "api.host:api.port if it answers; else open the database)")
    parser.add_argument("--database", metavar="PATH_OR_URL", default=default,
                        help="the job database (overrides the config's database)")
    parser.add_argument("--json", action="store_true",
                        default=argparse.SUPPRESS if suppress else False,
                        help="one JSON document on stdout (JSON lines for add --wait); "
                             "errors as JSON on stderr")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``debrid``."""
    parser = Parser(
        prog="debrid",
        description="debrid-engine: hand downloads to debrid services and follow them.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _globals(parser, suppress=False)
    common = Parser(add_help=False)
    _globals(common, suppress=True)
    parents: list[argparse.ArgumentParser] = [common]
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=Parser)

    _job_commands(commands, parents)
    _other_commands(commands, parents)
    _fake_server.add_parser(commands, parents)
    return parser


def _job_commands(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    """add, list, status, cancel, retry, clear, providers."""
    add = commands.add_parser("add", parents=parents, help="add download jobs",
                              description="One job per SOURCE: a URL, a magnet link or a "
                                          ".torrent file.")
    add.add_argument("sources", nargs="+", metavar="SOURCE", help="URL, magnet or FILE.torrent")
    add.add_argument("--provider", default="mock", help="provider name (default: mock)")
    add.add_argument("--select", action="append", metavar="GLOB",
                     help="only files matching GLOB (repeat for several)")
    add.add_argument("--largest-only", action="store_true",
                     help="only the largest (matching) file")
    add.add_argument("--download-dir", metavar="DIR",
                     help="where the files land (default: the config's download_dir)")
    add.add_argument("--connections", type=int, metavar="N",
                     help="parallel connections per file (1-16)")
    add.add_argument("--wait", action="store_true",
                     help="show progress until every job ends; exit 0 only if all COMPLETED")
    add.add_argument("--timeout", type=float, metavar="S",
                     help="with --wait: give up waiting after S seconds (exit 1)")
    add.set_defaults(run=_jobs.cmd_add)

    listing = commands.add_parser("list", parents=parents, help="list jobs, newest first")
    listing.add_argument("--status", action="append", metavar="S",
                         help="only these statuses (comma-separated or repeated)")
    listing.add_argument("--provider", metavar="P", help="only this provider's jobs")
    listing.add_argument("--search", metavar="TEXT",
                         help="text in the id, the source, the download dir or a file name")
    listing.add_argument("--limit", type=int, default=50, metavar="N",
                         help="at most N jobs (default 50, max 1000)")
    listing.set_defaults(run=_jobs.cmd_list)

    status = commands.add_parser("status", parents=parents, help="one job in full")
    status.add_argument("job_id", metavar="ID")
    status.set_defaults(run=_jobs.cmd_status)

    cancel = commands.add_parser("cancel", parents=parents, help="cancel jobs")
    cancel.add_argument("job_ids", nargs="+", metavar="ID")
    cancel.set_defaults(run=_jobs.cmd_cancel)

    retry = commands.add_parser("retry", parents=parents,
                                help="start FAILED or CANCELLED jobs again")
    retry.add_argument("job_ids", nargs="+", metavar="ID")
    retry.set_defaults(run=_jobs.cmd_retry)

    clear = commands.add_parser("clear", parents=parents, help="delete the COMPLETED jobs")
    clear.set_defaults(run=_jobs.cmd_clear)

    providers = commands.add_parser("providers", parents=parents, help="providers: health, test")
    which = providers.add_subparsers(dest="providers_command", required=True, metavar="ACTION",
                                     parser_class=Parser)
    which.add_parser("list", parents=parents, help="each provider's state").set_defaults(
        run=_jobs.cmd_providers_list)
    test = which.add_parser("test", parents=parents,
                            help="check that a provider answers and accepts its key")
    test.add_argument("name", metavar="NAME")
    test.set_defaults(run=_jobs.cmd_providers_test)



def _other_commands(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    """config, auth, serve."""
    config = commands.add_parser("config", parents=parents, help="the effective configuration")
    config_which = config.add_subparsers(dest="config_command", required=True, metavar="ACTION",
                                         parser_class=Parser)
    config_which.add_parser(
        "show", parents=parents,
        help="every key with its value and source (secrets masked)",
    ).set_defaults(run=_daemon.cmd_config_show)

    auth = commands.add_parser("auth", parents=parents, help="log in to a provider")
    auth_which = auth.add_subparsers(dest="auth_command", required=True, metavar="PROVIDER",
                                     parser_class=Parser)
    rd = auth_which.add_parser(
        "realdebrid", parents=parents,
        help="the device login (prints a code to enter at real-debrid.com), or --token",
    )
    rd.add_argument("--token", metavar="T",
                    help="a private API token instead (stored only if Real-Debrid accepts it)")
    rd.set_defaults(run=_auth.cmd_auth_realdebrid)
    tb = auth_which.add_parser(
        "torbox", parents=parents,
        help="store a TorBox API key (read without echo unless --key)",
    )
    tb.add_argument("--key", metavar="K", help="the API key (else read from stdin without echo)")
    tb.set_defaults(run=_auth.cmd_auth_torbox)

    serve = commands.add_parser("serve", parents=parents,
                                help="run the daemon: the engine and its control API")
    serve.add_argument("--host", help="address to listen on (default: the config's api.host)")
    serve.add_argument("--port", help="TCP port (0: any free one; default: api.port)")
    serve.add_argument("--demo", action="store_true",
                       help="also run fake Real-Debrid and TorBox servers and use them")
    serve.add_argument("--demo-step", type=float, default=2.0, metavar="SECONDS",
                       help="with --demo: seconds per lifecycle step of a demo job (default 2)")
    serve.add_argument("--log-format", choices=("console", "json"),
                       help="log lines as console text or JSON")
    serve.set_defaults(run=_daemon.cmd_serve)
