"""Reports: the validate JSON report, JUnit XML for CI test tabs, and a Markdown job summary.
Every writer is atomic (temp file + rename)."""

from edgelstm.validation.reports.junit import junit_xml, write_junit  # noqa: F401
from edgelstm.validation.reports.markdown import markdown_summary, write_markdown  # noqa: F401
from edgelstm.validation.reports.validate_json import report_dict, write_validate_report  # noqa: F401
