"""The application shell: settings, the composition root, the servers, the CLI and migrations."""
