"""thread origin

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 23:45:00.000000

How the bot came into each conversation (`origin`: a DM, a thread begun by mentioning it, or
a thread it was called into), which decides whom it answers there, and whether the thread's
earlier messages are stored (`history`: a thread it was called into is read from Slack once).
Existing conversations: DMs are `dm`; a channel conversation whose thread's first message is
stored began with the bot (`mention`), any other was called in; every history is `complete`
(they were never read from Slack, and are not read now).
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(
            sa.Column("origin", sa.String(length=16), server_default="mention", nullable=False)
        )
        batch.add_column(
            sa.Column("history", sa.String(length=16), server_default="complete", nullable=False)
        )
        batch.create_check_constraint("origin", "origin IN ('dm', 'mention', 'called_in')")
        batch.create_check_constraint(
            "history", "history IN ('complete', 'needed', 'read', 'unreadable')"
        )
    op.execute(
        "UPDATE conversations SET origin = CASE"
        " WHEN channel_id LIKE 'D%' THEN 'dm'"
        " WHEN EXISTS (SELECT 1 FROM messages WHERE messages.conversation_id = conversations.id"
        " AND messages.slack_ts = conversations.thread_ts) THEN 'mention'"
        " ELSE 'called_in' END"
    )


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_constraint("history", type_="check")
        batch.drop_constraint("origin", type_="check")
        batch.drop_column("history")
        batch.drop_column("origin")
