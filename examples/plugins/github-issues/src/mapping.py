"""GitHub's issues, pull requests and comments as items of the unified model.

- an issue (or a pull request) is a **document** (its title and body, searchable) and a
  **conversation** (its discussion), both with the external id ``<owner>/<repo>#<number>``;
- a comment is a **message** in its issue's conversation, sent by its author;
- an author (of an issue or a comment) is a **person**, external id ``user:<GitHub user id>``.
"""

from tributary_plugin import upsert
from tributary_plugin.model import ConversationFields, DocumentFields, MessageFields, PersonFields


def thread_id(repository: str, number: int) -> str:
    """The external id of issue ``number``'s document and conversation."""
    return f"{repository}#{number}"


def person_item(user: "dict | None", seen_at: str):
    """The person of a GitHub user object, or None for a deleted account (``user: null``)."""
    if not isinstance(user, dict) or user.get("id") is None or not user.get("login"):
        return None
    data: PersonFields = {
        "display_name": user["login"],
        "extra": {
            "github_login": user["login"],
            "github_id": user["id"],
            "type": user.get("type"),
            "html_url": user.get("html_url"),
            "avatar_url": user.get("avatar_url"),
        },
    }
    return upsert("persons", f"user:{user['id']}", seen_at, data, raw=user)


def issue_items(issue: dict, repository: str) -> list:
    """The document and conversation of an issue or a pull request."""
    number = issue["number"]
    external_id = thread_id(repository, number)
    login = (issue.get("user") or {}).get("login")
    is_pull_request = "pull_request" in issue
    document: DocumentFields = {
        "title": f"#{number} {issue.get('title') or ''}".strip(),
        "content": issue.get("body") or "",
        "mime_type": "text/markdown",
        "path": issue.get("html_url"),
        "modified_at": issue["updated_at"],
        "extra": {
            "repository": repository,
            "number": number,
            "kind": "pull_request" if is_pull_request else "issue",
            "state": issue.get("state"),
            "state_reason": issue.get("state_reason"),
            "author": login,
            "labels": [label.get("name") for label in issue.get("labels") or [] if isinstance(label, dict)],
            "assignees": [a.get("login") for a in issue.get("assignees") or [] if isinstance(a, dict)],
            "milestone": (issue.get("milestone") or {}).get("title"),
            "comments": issue.get("comments"),
            "locked": issue.get("locked"),
            "created_at": issue.get("created_at"),
            "closed_at": issue.get("closed_at"),
        },
    }
    conversation: ConversationFields = {
        "channel": "github",
        "title": document["title"],
        "participants": [login] if login else [],
        "extra": {"repository": repository, "number": number, "html_url": issue.get("html_url")},
    }
    return [
        upsert("documents", external_id, issue["updated_at"], document, raw=issue),
        upsert("conversations", external_id, issue["updated_at"], conversation, raw=issue),
    ]


def issue_number_of(comment: dict) -> "int | None":
    """The number of the issue a comment belongs to, from its ``issue_url``."""
    tail = str(comment.get("issue_url") or "").rstrip("/").rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


def comment_item(comment: dict, repository: str, number: int):
    """The message of a comment on issue ``number``."""
    login = (comment.get("user") or {}).get("login")
    message: MessageFields = {
        "sender": login or "ghost",
        "sent_at": comment["created_at"],
        "body_text": comment.get("body") or "",
        "conversation_external_id": thread_id(repository, number),
        "extra": {
            "repository": repository,
            "issue_number": number,
            "html_url": comment.get("html_url"),
            "author_association": comment.get("author_association"),
            "updated_at": comment.get("updated_at"),
        },
    }
    return upsert("messages", f"comment:{comment['id']}", comment["updated_at"], message, raw=comment)
