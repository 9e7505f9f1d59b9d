"""What events share and pass on, as plain rules: pool queues (`pools`), run parameters
(`params`) and approval records (`approvals`). Imports only the ground floor and timing; the
stages apply these rules to a tick."""
