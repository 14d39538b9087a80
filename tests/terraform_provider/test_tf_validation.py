"""Plan-time validation: what the server would refuse fails `terraform plan`, on its line."""

from __future__ import annotations


def test_server_rules_fail_the_plan_on_the_attribute(workspace, server):
    workspace.write(
        'resource "flowplane_namespace" "n" {\n  name = "Bad Name"\n}\n'
        'resource "flowplane_namespace_secret" "s" {\n'
        '  namespace = "tf.valid"\n  key = "1-bad"\n  value = "x"\n}\n'
        'resource "flowplane_git_source" "g" {\n'
        '  id  = "flows"\n  url = "ftp://git.example.com/flows.git"\n'
        "  poll_interval_seconds = 1\n  required_approvals = 11\n"
        '  approval = "sometimes"\n}\n'
    )
    result = workspace.plan()
    assert result.code == 1, result.output
    expected = [
        ("name is not valid", 'name = "Bad Name"'),
        ("key is not valid", 'key = "1-bad"'),
        ("url is not a Git URL Flowplane can fetch", "ftp:// is not supported"),
        ("poll_interval_seconds must be a whole number from 5 to 86400", "poll_interval_seconds"),
        ("required_approvals must be a whole number from 1 to 10", "required_approvals"),
        ("approval must be one of `auto`, `approval`", 'approval = "sometimes"'),
    ]
    for summary, shown in expected:
        assert f"Error: {summary}" in result.output, result.output
        assert shown in result.output
    assert result.output.count("Error:") == len(expected)
    # Terraform points at the attribute's line, so it names where it is.
    assert 'in resource "flowplane_git_source" "g"' in result.output
    assert "<flow>" not in result.output
    # Nothing reached the server.
    assert server.namespace("tf.valid") is None
    assert server.http.get("/api/v1/sources/flows").status_code == 404
