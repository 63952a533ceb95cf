"""The one place a case is judged: budgets, latency verdicts and whether a row counts at all
(throttling, the device fingerprint, parity). Its answer is a Judgement on a Row."""
