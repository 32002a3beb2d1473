"""Which student an AppTest session is: the owner id its token stands for (the session registry's key)."""

from vae_core.classroom.identity import owner_of

TOKEN = "student_token"  # pages/ui/session.py's session key


def student(at) -> str | None:
    """The AppTest session's owner id, once it has run (None before)."""
    return owner_of(at.session_state[TOKEN]) if TOKEN in at.session_state else None
