"""Reports: the self-contained ``report.html`` viewer of a reconstruction."""

from autocar.report.html import (
    MEASUREMENTS_FORMAT,
    REPORT_FILE,
    report_html,
    report_payload,
    write_report,
)

__all__ = ["MEASUREMENTS_FORMAT", "REPORT_FILE", "report_html", "report_payload", "write_report"]
