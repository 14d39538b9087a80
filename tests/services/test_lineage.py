from __future__ import annotations

from controlplane.services.lineage import commit_link


def test_commit_links_for_hosted_remotes() -> None:
    sha = "abc123"
    assert commit_link("https://github.com/acme/flows.git", sha) == (
        "https://github.com/acme/flows/commit/abc123"
    )
    assert commit_link("git@gitlab.com:acme/flows.git", sha) == (
        "https://gitlab.com/acme/flows/-/commit/abc123"
    )
    assert commit_link("file:///srv/flows", sha) is None
