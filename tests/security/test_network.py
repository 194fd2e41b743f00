"""The network: HTTP, raw sockets, DNS, servers, the runner's own socket, and code from
elsewhere (remote, ``npm:`` and ``jsr:`` imports). The process runs with ``--no-remote
--no-npm --cached-only`` and the program's worker with no permissions at all.

Behind the OS wall alone: a network namespace of its own (loopback only, nothing listening),
seccomp allows unix sockets only, no ``/etc/resolv.conf``, and no host socket in its filesystem."""

from __future__ import annotations

import asyncio

import pytest
from _support import (
    HEALTHY,
    HEALTHY_CODE,
    NOT_PERMITTED,
    Attack,
    Matches,
    check_attack,
    failed,
    not_capable,
    params,
    run,
    succeeded,
    walls_of,
    with_walls,
)

from codemode import CodeModeTool

pytestmark = pytest.mark.asyncio(loop_scope="module")


def net(target: str) -> str:
    return f'net access to "{target}"'


def imports(target: str) -> str:
    return f'import access to "{target}"'


ATTACKS = [
    Attack(
        "fetch-http",
        'return (await fetch("http://example.com/")).status',
        not_capable(net("example.com:80"), "net"),
    ),
    Attack(
        "fetch-loopback-https",
        'return (await fetch("https://127.0.0.1:8443/")).status',
        not_capable(net("127.0.0.1:8443"), "net"),
    ),
    Attack(
        "fetch-cloud-metadata",
        'return await (await fetch("http://169.254.169.254/latest/meta-data/")).text()',
        not_capable(net("169.254.169.254:80"), "net"),
    ),
    Attack(
        "tcp-connect",
        'await Deno.connect({ hostname: "127.0.0.1", port: 22 }); return 1',
        not_capable(net("127.0.0.1:22"), "net"),
    ),
    Attack(
        "tls-connect",
        'await Deno.connectTls({ hostname: "example.com", port: 443 }); return 1',
        not_capable(net("example.com:443"), "net"),
    ),
    Attack(
        "host-channel-socket",
        'await Deno.connect({ transport: "unix", path: Deno.cwd() + "/host.sock" }); return 1',
        not_capable(Matches(r'read access to "/.*/codemode-[^/"]+/host\.sock"'), "read"),
    ),
    Attack(
        "docker-socket",
        'await Deno.connect({ transport: "unix", path: "/var/run/docker.sock" }); return 1',
        not_capable('read access to "/var/run/docker.sock"', "read"),
    ),
    Attack(
        "dns",
        'return await Deno.resolveDns("example.com", "A")',
        not_capable(Matches(r'net access to "[0-9a-f.:\[\]]+:53"'), "net"),
    ),
    Attack(
        "node-dns-lookup",
        'const dns = await import("node:dns"); return await new Promise((ok, ko) => '
        'dns.lookup("example.com", (e, a) => e ? ko(e) : ok(a)))',
        failed("getaddrinfo EPERM example.com", "Error", line=None),
    ),
    Attack(
        "node-net-connect",
        'const net = await import("node:net"); return await new Promise((ok, ko) => '
        'net.connect(22, "127.0.0.1", () => ok("connected")).on("error", ko))',
        not_capable(net("127.0.0.1:22"), "net", line=None),
    ),
    Attack(
        "node-http-get",
        'const http = await import("node:http"); return await new Promise((ok, ko) => '
        'http.get("http://127.0.0.1:1/", r => ok(r.statusCode)).on("error", ko))',
        not_capable(net("127.0.0.1:1"), "net", line=None),
    ),
    Attack(
        "websocket",
        'new WebSocket("ws://127.0.0.1:1/"); return 1',
        not_capable(net("127.0.0.1:1"), "net"),
    ),
    Attack(
        "event-source",
        'const es = new EventSource("http://127.0.0.1:1/"); return await new Promise(r => { '
        'es.onerror = () => r(["error", es.readyState]); es.onopen = () => r("open") })',
        succeeded(["error", 0]),  # denied, and retrying (CONNECTING) until the program ends
    ),
    Attack(
        "listen-tcp",
        "Deno.listen({ port: 8080 }); return 1",
        not_capable(net("0.0.0.0:8080"), "net"),
    ),
    Attack(
        "listen-unix",
        'Deno.listen({ transport: "unix", path: "./x.sock" }); return 1',
        not_capable('read access to "./x.sock"', "read"),
    ),
    Attack(
        "serve-http",
        'Deno.serve({ port: 8081 }, () => new Response("hi")); return 1',
        not_capable(net("0.0.0.0:8081"), "net"),
    ),
    Attack(
        "import-remote-https",
        'return (await import("https://deno.land/std@0.224.0/version.ts")).VERSION',
        not_capable(imports("deno.land:443"), "import", name="TypeError"),
    ),
    Attack(
        "import-remote-http-loopback",
        'return (await import("http://127.0.0.1:1/x.ts")).default',
        not_capable(imports("127.0.0.1:1"), "import", name="TypeError"),
    ),
    Attack(
        "import-remote-computed",
        'const u = "https://esm.sh/" + "left-pad"; return (await import(u)).default',
        not_capable(imports("esm.sh:443"), "import", name="TypeError"),
    ),
    Attack(
        "import-npm",
        'return (await import("npm:left-pad@1.3.0")).default("x", 3)',
        failed("npm specifiers were requested; but --no-npm is specified", "TypeError"),
    ),
    Attack(
        "import-jsr",
        'return (await import("jsr:@std/path@1")).basename("/a/b")',
        failed(
            "JSR package manifest for '@std/path' failed to load. Requires import access to "
            '"jsr.io:443", run again with the --allow-import flag',
            "TypeError",
        ),
    ),
]


FETCH_FAILED = failed("fetch failed", "TypeError")
NO_RESOLVER = failed("proto error: io error: No such file or directory (os error 2)", "Error")


def no_remote(url: str) -> dict[str, object]:
    return failed(
        f'A remote specifier was requested: "{url}", but --no-remote is specified.', "TypeError"
    )


WALLED = {
    "fetch-http": FETCH_FAILED,
    "fetch-loopback-https": FETCH_FAILED,
    "fetch-cloud-metadata": FETCH_FAILED,
    "tcp-connect": NOT_PERMITTED,  # seccomp: no socket but a unix one
    "tls-connect": failed(
        "failed to lookup address information: Temporary failure in name resolution", "Error"
    ),
    "host-channel-socket": failed("No such file or directory (os error 2)", "NotFound"),
    "docker-socket": failed("No such file or directory (os error 2)", "NotFound"),
    "dns": NO_RESOLVER,
    "node-dns-lookup": failed("getaddrinfo EAI_AGAIN example.com", "Error", line=None),
    "node-net-connect": failed("connect EACCES 127.0.0.1:22", "Error", line=None),
    "node-http-get": failed("connect EACCES 127.0.0.1:1", "Error", line=None),
    "websocket": succeeded(1),  # it fails later, as an event
    "listen-tcp": NOT_PERMITTED,
    "listen-unix": succeeded(1),  # in its scratch directory, emptied after the execution
    "serve-http": NOT_PERMITTED,
    # The flags still apply (Deno grants every permission, but --no-remote and --no-npm hold).
    "import-remote-https": no_remote("https://deno.land/std@0.224.0/version.ts"),
    "import-remote-http-loopback": no_remote("http://127.0.0.1:1/x.ts"),
    "import-remote-computed": no_remote("https://esm.sh/left-pad"),
    "import-jsr": failed(
        "JSR package manifest for '@std/path' failed to load. A remote specifier was requested: "
        '"https://jsr.io/@std/path/meta.json", but --no-remote is specified.',
        "TypeError",
    ),
}
# Both walls: Deno reads the resolver's configuration before it asks for a net permission.
BOTH = {"dns": NO_RESOLVER}
ATTACKS = with_walls(ATTACKS, WALLED, BOTH)


@pytest.mark.parametrize("attack", params(ATTACKS))
async def test_the_network_is_out_of_reach(code_tool: CodeModeTool, attack: Attack) -> None:
    await check_attack(code_tool, attack)


async def test_a_listening_host_server_is_never_reached(code_tool: CodeModeTool) -> None:
    """Against a server that really listens on the host's loopback, every way to connect
    fails inside the sandbox and the server never sees a connection."""
    connections = 0

    def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    walled = walls_of(code_tool) == "wall"
    denied = NOT_PERMITTED if walled else not_capable(net(f"127.0.0.1:{port}"), "net")
    programs = {
        f'return (await fetch("http://127.0.0.1:{port}/")).status': (
            FETCH_FAILED if walled else denied
        ),
        f'await Deno.connect({{ hostname: "127.0.0.1", port: {port} }}); return 1': denied,
        f'await Deno.connect({{ hostname: "localhost", port: {port} }}); return 1': (
            WALLED["tls-connect"]  # no /etc/hosts: not even localhost resolves
            if walled
            else not_capable(net(f"localhost:{port}"), "net")
        ),
        f'new WebSocket("ws://127.0.0.1:{port}/"); return 1': succeeded(1) if walled else denied,
        f'const net = await import("node:net"); return await new Promise((ok, ko) => '
        f'net.connect({port}, "127.0.0.1", () => ok("connected")).on("error", ko))': (
            failed(f"connect EACCES 127.0.0.1:{port}", "Error", line=None)
            if walled
            else not_capable(net(f"127.0.0.1:{port}"), "net", line=None)
        ),
    }
    try:
        for code, expected in programs.items():
            assert await run(code_tool, code) == expected
        await asyncio.sleep(0.1)
        assert connections == 0
    finally:
        server.close()
        await server.wait_closed()
    assert await run(code_tool, HEALTHY_CODE) == HEALTHY
