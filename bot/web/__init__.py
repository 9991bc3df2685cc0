"""The web process: the Hub webhook endpoint, its payloads and checks, and the operators' views."""
