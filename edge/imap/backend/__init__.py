"""pymap's backend interfaces on mailpipe's mailboxes: the folders, messages and flags the
API shows, read and changed through the same ports. Every storage call is blocking
(boto3), so each runs on the edge's thread pool, never on the event loop.

Laid out as pymap's own backends are: login.py logs in (ImapLogin, ImapIdentity);
storage.py holds the ports and the hop to the thread pool; idle.py tells idle clients
that their folder changed; message.py is a message and what FETCH reads of it;
folder.py one folder (IMAP's "mailbox"; its UIDs are per folder), folders.py an
account's folders; session.py a logged-in session."""
