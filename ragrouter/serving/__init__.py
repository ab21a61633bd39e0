"""The gateway's parts: what it routes with, and how routed prompts' outcomes feed back."""
