"""Only administrators connect repositories at an address of this server or a link-local one."""

import pytest

from app.projects import _own_addresses, clone_url_host

SERVER_URLS = [
    "http://127.0.0.1:8733/x.git",
    "https://localhost/team/app.git",
    "git://127.0.0.1:8733/x.git",
    "ssh://git@127.0.0.1:8734/x.git",
    "git@localhost:team/app.git",
    "http://[::1]/x.git",
    "http://2130706433/x.git",
    "http://127.1/x.git",
    "http://0.0.0.0/x.git",
    "http://[::ffff:127.0.0.1]/x.git",
    "http://169.254.169.254/latest/meta-data",
    "http://%31%32%37.0.0.1:8742/a.git",
    "http://127%2e0%2e0%2e1:8742/a.git",
    "http://[::ffff:127.0.0.1%25lo]:8742/a.git",
    "http://[fe80::1%25lo]/x.git",
    "http://[::1%25lo]/x.git",
    "http://[::127.0.0.1]/x.git",
    "http://[64:ff9b::127.0.0.1]/x.git",
    "http://localhost./x.git",
    "HTTP://127.0.0.1/x.git",
    "git@[::1]:team/app.git",
    "localhost:team/app.git",
]


@pytest.mark.parametrize("clone_url", SERVER_URLS)
def test_developer_cannot_connect_server_address(api, clone_url):
    response = api("developer", "POST", "/projects", json={"name": "probe", "clone_url": clone_url})
    assert response.status_code == 403, response.get_json()
    assert "Only administrators may connect a repository at an address of this server" in response.get_json()["detail"]


@pytest.mark.parametrize("version", [4, 6])
def test_developer_cannot_connect_own_address(api, version):
    own = [address for address in _own_addresses() if address.version == version and not address.is_loopback
           and not address.is_link_local]
    if not own:
        pytest.skip(f"this machine has no IPv{version} address besides loopback and link-local ones")
    host = str(own[0]) if version == 4 else f"[{own[0]}]"
    response = api("developer", "POST", "/projects", json={"name": "probe", "clone_url": f"http://{host}:8733/x.git"})
    assert response.status_code == 403


def test_project_admin_cannot_move_project_to_server_address(api, world):
    response = api("project_admin", "PATCH", f"/projects/{world.alpha.name}", json={"clone_url": "http://127.0.0.1/x.git"})
    assert response.status_code == 403


@pytest.mark.parametrize("clone_url", ["https://10.1.2.3/team/app.git", "git@192.168.1.20:team/app.git",
                                       "https://git.example.invalid/team/app.git", "git@[2001:db8::1]:repo.git",
                                       "github.com:org/repo.git"])
def test_developer_connects_private_or_unresolved_address(api, clone_url):
    response = api("developer", "POST", "/projects", json={"name": "internal", "clone_url": clone_url})
    assert response.status_code == 201, response.get_json()


def test_admin_connects_server_address(api):
    response = api("admin", "POST", "/projects", json={"name": "mirror", "clone_url": "http://127.0.0.1:8733/x.git"})
    assert response.status_code == 201


@pytest.mark.parametrize("clone_url, host", [
    ("https://user:pw@Git.Example.com:8443/a.git", "git.example.com"),
    ("git@host.example:team/app.git", "host.example"),
    ("ssh://[::1]:22/x.git", "::1"),
    ("http://%31%32%37.0.0.1/x.git", "127.0.0.1"),
    ("git@[2001:db8::1]:repo.git", "2001:db8::1"),
    ("github.com:org/repo.git", "github.com"),
    ("/srv/git/app", None),
    ("file:///srv/git/app", None),
])
def test_clone_url_host(clone_url, host):
    assert clone_url_host(clone_url) == host
