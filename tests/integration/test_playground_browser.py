"""The playground page: public page and assets over a keyed API, driven in headless Chromium.

The in-process tests check what the service serves (the page and its assets are public, the
API is not, no other route became public). The ``browser`` tests start ``tandem serve`` on a
free 127.0.0.1 port over the fixture index with an API key and drive Debian's ``chromium``
through Playwright's Python package; they skip when either is missing. With
``TANDEM_SCREENSHOT=1`` they also write ``docs/playground.png``.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import FixtureIndex, find_free_port
from tests.serving import REPO, cli_env, tandem_serve

KEY = "playground-key-0123456789"
SCREENSHOT = REPO / "docs" / "playground.png"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: The only routes outside /health that answer without a key.
PLAYGROUND_ROUTES = {"/", "/playground", "/playground/static/{file_path:path}"}


# -- what the service serves (no browser) ------------------------------------------------------
async def test_page_and_assets_are_public_and_the_api_is_not(
    service: Callable[..., Any], service_settings: Callable[..., Any]
):
    async with service(service_settings(api_keys=KEY)) as client:
        for path in ("/", "/playground"):
            page = await client.get(path)
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            assert "script-src 'self'" in page.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
            assert "/playground/static/playground.js" in page.text
            assert "fixture" not in page.text  # the page holds no data
        js = await client.get("/playground/static/playground.js")
        css = await client.get("/playground/static/playground.css")
        assert js.status_code == 200 and "javascript" in js.headers["content-type"]
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        for escape in ("/playground/static/../playground.py", "/playground/static/%2e%2e/x.py"):
            missing = await client.get(escape)
            assert missing.status_code == 404
            assert missing.json()["error"]["code"] == "not_found"
        denied = await client.get("/v1/indexes")
        assert denied.status_code == 401
        assert denied.json()["error"]["code"] == "unauthorized"
        listed = await client.get("/v1/indexes", headers={"Authorization": f"Bearer {KEY}"})
        assert [i["name"] for i in listed.json()["indexes"]] == ["fixture"]


def test_the_playground_makes_no_api_route_public(service_settings: Callable[..., Any]):
    from app.server import create_app

    app = create_app(service_settings(api_keys=KEY))
    public = {
        route.path
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        if handler.opt.get("public") and not route.path.startswith("/health/")
    }
    # The schema page's assets (Redoc, its shell script) are public too: no data in them.
    assert public - {"/schema/static/{file_path:path}"} == PLAYGROUND_ROUTES


# -- the browser -------------------------------------------------------------------------------
def chromium_path() -> str | None:
    """Debian's chromium (or ``TANDEM_CHROMIUM``); None when there is none."""
    for candidate in (
        os.environ.get("TANDEM_CHROMIUM"),
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        "/usr/bin/chromium",
    ):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="module")
def serve_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("playground-log") / "serve.log"


@pytest.fixture(scope="module")
def served(
    fixture_index: FixtureIndex, tmp_path_factory: pytest.TempPathFactory, serve_log: Path
) -> Iterator[str]:
    """``tandem serve`` over a copy of the fixture index, with one API key: its base URL."""
    copy = fixture_index.copy_to(tmp_path_factory.mktemp("playground"))
    env = cli_env(TANDEM_API_KEYS=KEY, TANDEM_RATE_LIMIT_REQUESTS="0")
    with tandem_serve(copy.data_dir, find_free_port(), env, serve_log) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    if executable is None:
        pytest.skip("no chromium binary (apt-get install chromium, or set TANDEM_CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install playwright)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any, served: str) -> Iterator[Any]:
    context = browser.new_context(base_url=served, viewport={"width": 1360, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    console: list[str] = []
    page.on("pageerror", lambda exc: console.append(str(exc)))
    try:
        yield page
        assert console == [], f"JavaScript errors: {console}"
    finally:
        context.close()


def connect(page: Any, key: str = KEY) -> None:
    """Open the playground, give it ``key`` and wait for the index list."""
    from playwright.sync_api import expect

    page.goto("/")
    expect(page.locator("#key-dialog")).to_be_visible()
    page.get_by_role("textbox", name="API key").fill(key)
    page.get_by_role("button", name="Connect").click()
    expect(page.locator("#key-dialog")).to_be_hidden()
    expect(page.locator(".index-item")).to_have_count(1)


def screenshot(page: Any) -> None:
    if os.environ.get("TANDEM_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)


@pytest.mark.browser
def test_a_wrong_key_is_rejected_in_the_apis_words_then_the_right_one_lists_indexes(
    page: Any, served: str
):
    from playwright.sync_api import expect

    words = httpx.get(f"{served}/v1/indexes").json()["error"]["message"]
    assert "API key" in words

    page.goto("/playground")
    dialog = page.locator("#key-dialog")
    expect(dialog).to_be_visible()  # the first request went without a key: 401
    expect(page.locator("#key-error")).to_have_text(words)

    page.get_by_role("textbox", name="API key").fill("not-the-key")
    page.keyboard.press("Enter")
    expect(page.locator("#key-error")).to_have_text(words)
    expect(dialog).to_be_visible()
    expect(page.locator("#key-status")).to_have_text("API key needed")
    assert page.evaluate("sessionStorage.getItem('tandem.playground.key')") is None

    page.get_by_role("textbox", name="API key").fill(KEY)
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    expect(page.locator("#key-status")).to_have_text("Key accepted")
    item = page.locator(".index-item")
    expect(item).to_have_count(1)
    expect(item).to_contain_text("fixture")
    expect(item).to_contain_text("v1")
    expect(item).to_contain_text("8 documents")
    expect(item).to_have_attribute("aria-pressed", "true")

    page.reload()  # the key is kept for the tab
    expect(page.locator(".index-item")).to_have_count(1)
    expect(dialog).to_be_hidden()


@pytest.mark.browser
def test_search_shows_hits_and_applies_metadata_filters(page: Any):
    from playwright.sync_api import expect

    connect(page)
    panel = page.locator("#panel-search")
    page.get_by_label("Query").fill("thunderstorm electrical discharge graupel")
    page.get_by_label("Hits").fill("3")
    page.get_by_role("button", name="Search", exact=True).click()
    hits = page.locator("#search-hits > li")
    expect(hits).to_have_count(3)
    expect(hits.first).to_contain_text("stepped leader")
    expect(hits.first.locator(".ids")).to_contain_text("docs.jsonl#L1")
    expect(hits.first.locator(".source")).to_have_text("docs.jsonl")
    expect(hits.first.locator(".chip", has_text="topic=science")).to_be_visible()
    score = float(hits.first.locator(".score").inner_text())
    assert score > 0
    expect(page.locator("#search-summary")).to_contain_text("3 hits from fixture v1")
    expect(page.locator("#search-timings")).to_contain_text("total")

    panel.get_by_label("Filter 1 field").fill("topic")
    panel.get_by_label("Filter 1 value").fill("food")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(hits.first).not_to_contain_text("stepped leader")
    chips = page.locator("#search-hits .chip", has_text="topic=")
    expect(chips).to_have_count(2)  # only the two food documents
    assert set(chips.all_inner_texts()) == {"topic=food"}

    # The API's validation error, in its words.
    panel.get_by_label("Filter 1 field").fill("bad field!")
    page.get_by_role("button", name="Search", exact=True).click()
    error = page.locator("#search-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("invalid filter field 'bad field!'")

    panel.get_by_label("Filter 1 field").fill("topic")
    panel.get_by_label("Filter 1 value").fill("science")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(error).to_be_hidden()
    expect(hits.first).to_contain_text("stepped leader")
    screenshot(page)


def ask_route_exists(base: str) -> bool:
    response = httpx.post(
        f"{base}/v1/indexes/fixture/ask",
        json={"question": "what is lightning?", "mode": "small", "top_k": 1},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=60,
    )
    return response.status_code != 404 or response.json()["error"]["code"] == "index_not_found"


@pytest.mark.browser
def test_ask_streams_an_answer_with_citations_that_open_their_passage(
    page: Any, served: str, serve_log: Path
):
    try:
        ask_in_the_browser(page, served)
    except AssertionError as exc:
        tail = "\n".join(serve_log.read_text(errors="replace").splitlines()[-30:])
        raise AssertionError(f"{exc}\n--- tandem serve log (tail) ---\n{tail}") from exc


def ask_in_the_browser(page: Any, served: str) -> None:
    from playwright.sync_api import expect

    if not ask_route_exists(served):
        pytest.skip("POST /v1/indexes/{name}/ask answers 404: app/controllers/answers.py not in")
    connect(page)
    page.get_by_role("tab", name="Ask").click()
    expect(page.get_by_role("tab", name="Ask")).to_have_attribute("aria-selected", "true")
    page.get_by_label("Question").fill(
        "What separates electric charge in a thunderstorm cloud before lightning?"
    )
    page.get_by_label("small models").check()
    expect(page.get_by_label("Stream the answer")).to_be_checked()
    page.get_by_role("button", name="Ask", exact=True).click()

    answer = page.locator("#answer")
    expect(answer).to_have_attribute("data-state", "done", timeout=60_000)
    expect(page.locator("#ask-error")).to_be_hidden()
    text = page.locator("#answer-text")
    assert int(text.get_attribute("data-tokens") or 0) >= 1  # it came as token events
    assert text.inner_text().strip()
    expect(page.locator('#answer-facts [data-fact="served by"] dd')).not_to_be_empty()
    expect(page.locator("#answer-reason")).to_contain_text("Why:")
    expect(page.locator("#answer-timings")).to_contain_text("total")

    citations = page.locator("#answer-citations .citation")
    assert citations.count() >= 1
    first = citations.first
    n = first.get_attribute("data-cite")
    inline = page.locator(f'#answer-text .cite[data-cite="{n}"]')
    opener = inline.first if inline.count() else first
    opener.click()
    drawer = page.locator("#passage")
    expect(drawer).to_be_visible()
    expect(drawer).to_be_focused()
    expect(page.locator("#passage-title")).to_have_text(f"Passage [{n}]")
    expect(page.locator("#passage-source")).to_contain_text("docs.jsonl")
    assert len(page.locator("#passage-text").inner_text()) > 40
    expect(opener).to_have_attribute("aria-expanded", "true")
    screenshot(page)

    page.keyboard.press("Escape")
    expect(drawer).to_be_hidden()
    expect(opener).to_be_focused()


#: An SSE body with CRLF and LF lines, a comment, a multi-line data field and a non-ASCII
#: character; cut into reads inside a CRLF pair and inside that character's UTF-8 bytes.
SSE_BODY = (
    ': a comment\r\nevent: token\r\ndata: {"text": "Graupel [1]. "}\r\n\r\n'
    'event: token\ndata: {"text": "It is hotter than the sun [2] café."}\n\n'
    'event: done\ndata: {"a":\ndata: 1}\n\n'
).encode()
SSE_CUTS = (
    SSE_BODY.index(b"\r\n\r\n") + 1,
    SSE_BODY.index("é".encode()) + 1,
    len(SSE_BODY) - 3,
)


@pytest.mark.browser
def test_the_sse_parser_and_the_unsupported_marks(page: Any):
    """The page's own SSE parser on awkward chunking, and how an answer is marked up."""
    from playwright.sync_api import expect

    connect(page)
    events = page.evaluate(
        """async (chunks) => {
            const body = new ReadableStream({
                start(c) { for (const x of chunks) c.enqueue(new Uint8Array(x)); c.close(); },
            });
            const out = [];
            for await (const ev of window.TandemPlayground.sseEvents(body)) out.push(ev);
            return out;
        }""",
        [list(SSE_BODY[a:b]) for a, b in itertools.pairwise((0, *SSE_CUTS, len(SSE_BODY)))],
    )
    assert events == [
        {"event": "token", "data": '{"text": "Graupel [1]. "}'},
        {"event": "token", "data": '{"text": "It is hotter than the sun [2] café."}'},
        {"event": "done", "data": '{"a":\n1}'},
    ]

    page.get_by_role("tab", name="Ask").click()
    page.evaluate(
        """() => {
            document.getElementById("answer").hidden = false;
            window.TandemPlayground.renderAnswer({
                index: "fixture", version: 1, answer: "Graupel [1]. It is hotter than the sun [2].",
                citations: [
                    {n: 1, source: "/c/a.txt", doc_id: "a", chunk_id: "a::0", text: "Graupel."},
                    {n: 2, source: "/c/b.txt", doc_id: "b", chunk_id: "b::0", text: "Sun."},
                ],
                grounded: {
                    score: 0.2, unsupported: ["It is hotter than the sun [2].", "Not there."],
                },
                confidence: 0.5, served_by: "llm", reason: "low_confidence", cached: false,
                timings_ms: {search: 3, llm: 40, check: 9, total: 55},
            });
        }"""
    )
    mark = page.locator("#answer-text mark.unsupported")
    expect(mark).to_have_count(1)
    expect(mark).to_contain_text("It is hotter than the sun")
    expect(mark.locator(".cite")).to_have_text("[2]")
    expect(page.locator("#answer-text > .cite")).to_have_text("[1]")
    expect(page.locator("#answer-legend")).to_be_visible()
    expect(page.locator("#answer-unfound li")).to_have_text("Not there.")
    expect(page.locator('#answer-facts [data-fact="served by"] dd')).to_have_text("llm")
    expect(page.locator("#answer-reason")).to_contain_text("low_confidence")
    expect(page.locator("#answer-timings dt")).to_have_text(["search", "llm", "check", "total"])
    mark.locator(".cite").click()
    expect(page.locator("#passage-text")).to_have_text("Sun.")
