"""The IMAP connection's state: pymap's, with CONDSTORE (edge/imap/condstore/state.py),
NAMESPACE, UNSELECT, LIST's bounds and SPECIAL-USE selection, and a command that fails
answered NO [SERVERBUG] while the session goes on."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from pymap.exceptions import ResponseError
from pymap.parsing.command import Command
from pymap.parsing.command.auth import ListCommand
from pymap.parsing.commands import InvalidCommand
from pymap.parsing.response import (
    CommandResponse,
    ResponseBad,
    ResponseCode,
    ResponseNo,
    ResponseOk,
    UntaggedResponse,
)
from pymap.parsing.response.specials import ListResponse
from pysasl.exception import AuthenticationError

from edge.imap.backend.folders import SPECIAL_USE_ATTRIBUTES
from edge.imap.commands import ExtendedListCommand, NamespaceCommand, UnselectCommand
from edge.imap.condstore.state import CondstoreState
from edge.imap.listing import pattern_problem
from edge.imap.literals import RefusedLiteral

logger = Logger(child=True)


class ImapConnectionState(CondstoreState):
    async def do_namespace(self, cmd: NamespaceCommand) -> tuple[CommandResponse, None]:
        response = ResponseOk(cmd.tag, b"NAMESPACE completed.")
        # One personal namespace, the account's own folders; nobody else's, nothing shared.
        response.add_untagged(UntaggedResponse(b'NAMESPACE (("" "/")) NIL NIL'))
        return response, None

    async def do_unselect(self, cmd: UnselectCommand) -> tuple[CommandResponse, None]:
        self._selected = None
        return ResponseOk(cmd.tag, b"UNSELECT completed."), None

    async def do_list(self, cmd: ListCommand) -> Any:
        # LIST, LSUB and LIST (SPECIAL-USE) alike: a pattern past the bounds is refused.
        problem = pattern_problem(cmd.ref_name, cmd.filter)
        if problem is not None:
            return ResponseBad(cmd.tag, problem.encode(), ResponseCode.of(b"LIMIT")), None
        if not (isinstance(cmd, ExtendedListCommand) and cmd.special_use_only):
            return await super().do_list(cmd)
        listed, updates = await self.session.list_mailboxes(
            cmd.ref_name, cmd.filter, selected=self._selected)
        response = ResponseOk(cmd.tag, b"LIST completed.")
        for name, delimiter, attributes in listed:
            if SPECIAL_USE_ATTRIBUTES & set(attributes):
                response.add_untagged(ListResponse(name, delimiter, attributes))
        return response, updates

    async def do_command(self, cmd: Command) -> CommandResponse:
        if isinstance(cmd, RefusedLiteral):
            # TOOBIG is BAD, as pymap's parser answers a literal over its own limits (RFC
            # 7889 allows either); LIMIT, a busy server, is NO: the same command may succeed
            # later.
            answer = ResponseBad if cmd.code == b"TOOBIG" else ResponseNo
            return answer(cmd.tag, cmd.text, ResponseCode.of(cmd.code))
        # pymap answers a command it could not parse with a bare BAD; the reason it found
        # (TOOBIG: a literal over APPENDLIMIT, refused before it was sent) is the client's
        # to see (RFC 7889, RFC 4469).
        if isinstance(cmd, InvalidCommand) and cmd.parse_exc is not None \
                and cmd.parse_exc.code is not None:
            return ResponseBad(cmd.tag, cmd.message, cmd.parse_exc.code)
        try:
            response = await super().do_command(cmd)
        except (ResponseError, AuthenticationError, TimeoutError, ConnectionError, EOFError):
            raise  # pymap's own answers (NO, BAD, BYE) and the end of the connection
        except Exception:
            # pymap ends the connection on any other error (BYE [SERVERBUG], in its
            # _run_state): one message or command the backend did not foresee would then
            # lock a client out of its folder on every retry. The command fails, the
            # session goes on, and the log keeps the reason.
            logger.exception("imap command failed", command=cmd.command.decode("ascii",
                                                                               "replace"))
            return ResponseNo(cmd.tag, cmd.command + b" failed: server error.",
                              ResponseCode.of(b"SERVERBUG"))
        return response
