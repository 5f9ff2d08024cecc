"""The App Home: the Home tab (a person's model, choices and usage; the workspace for admins)
and the Messages tab's suggested prompts."""
