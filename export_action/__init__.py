"""The hub-exporter GitHub Action: export, validate, and open or update a pull request."""
