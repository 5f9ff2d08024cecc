"""Files people share with the bot: what kind each is, downloading it from Slack's own hosts
(`download.py`), its text (`pdf.py`, `extract.py`), images made small enough to send
(`images.py`), and the service that reads a turn's files and gives the context what the
model is shown of them (`service.py`). Queries live in `db/files.py`.
"""
