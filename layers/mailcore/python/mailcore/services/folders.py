"""Managing an account's folders: create, rename (with the folders under it), delete."""

from __future__ import annotations

from mailcore.domain.mailbox import Folder, folder_name_problem
from mailcore.errors import InvalidRequest
from mailcore.ports import Mailboxes


def create_folder(account: str, name: str, mailboxes: Mailboxes) -> Folder:
    problem = folder_name_problem(name)
    if problem:
        raise InvalidRequest(problem, "name")
    return mailboxes.create_folder(account, name)


def rename_folder(account: str, name: str, new_name: str, mailboxes: Mailboxes) -> Folder:
    folder = mailboxes.folder_named(account, name)
    if folder.role is not None:
        raise InvalidRequest("a role folder keeps its name", "name")
    if new_name == folder.name:
        return folder
    problem = folder_name_problem(new_name)
    if problem:
        raise InvalidRequest(problem, "name")
    return mailboxes.rename_folder(account, folder, new_name)


def delete_folder(account: str, name: str, mailboxes: Mailboxes) -> None:
    folder = mailboxes.folder_named(account, name)
    if folder.role is not None:
        raise InvalidRequest("a role folder cannot be deleted", "name")
    mailboxes.delete_folder(account, folder)
