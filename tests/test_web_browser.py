"""The status pages in a real browser: Debian's headless Chromium, driven by
selenium, opens a Persian and a Georgian ticket's page served by uvicorn
(`web/server.py`) and checks the text, the direction, that the stylesheet loads
under the Content-Security-Policy, and that the list's filter form works without
JavaScript. Screenshots go to test-output/ in the checkout (git-ignored):
web-ticket-fa.png, web-list-fa.png, web-ticket-ka.png, web-list-ka.png.

Chromium missing: skipped on a developer's machine, a failure under CI=true
(scripts/install-test-deps installs it)."""
from __future__ import annotations

import os
import shutil

import pytest
from sqlalchemy import select

from mailgate.gateway import Gateway
from mailgate.models import Outbox, Ticket
from mailgate.pipeline import Envelope, ingest
from mailgate.web.server import WebServer
from tests.conftest import ROOT
from tests.mails import make_mail

OUTPUT = ROOT / "test-output"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SECRET = "browser-secret-" + "b" * 32


@pytest.fixture
def browser():
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        message = "chromium and chromium-driver are required (scripts/install-test-deps)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from selenium import webdriver  # noqa: E402  (only the browser test loads selenium)
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--window-size=1000,800", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def served(settings, parser_pool, departments):
    """The pages served on a loopback port: (gateway, base URL)."""
    server = None
    gateway = Gateway(settings.replace(security={"secret": SECRET},
                                       web={"base_url": "http://127.0.0.1"}),
                      parser=parser_pool)
    try:
        server = WebServer(gateway, "127.0.0.1:0", lambda: None)
        host, port = server.start()
        yield gateway, f"http://{host}:{port}"
    finally:
        if server is not None:
            server.stop(10)
        gateway.close()


def open_ticket(gw, base: str, sender: str, to: str, subject: str, body: str) -> str:
    """A new ticket by mail; the URL of its page from its acknowledgement."""
    ingest(gw, make_mail(sender=sender, to=to, subject=subject, body=body), Envelope("pipe"))
    with gw.db.unit_of_work() as session:
        row = session.scalars(select(Outbox).where(Outbox.kind == "ack")
                              .order_by(Outbox.id.desc())).first()
        return row.context["status_url"].replace("http://127.0.0.1", base)


def close_all_but_last(gw, email: str) -> None:
    with gw.db.unit_of_work() as session:
        tickets = list(session.scalars(select(Ticket).order_by(Ticket.id)))
        for ticket in tickets[:-1]:
            if ticket.requester.email == email:
                ticket.status = "closed"


def shot(driver, name: str) -> None:
    OUTPUT.mkdir(exist_ok=True)
    driver.save_screenshot(str(OUTPUT / name))


def check_page(driver, direction: str, lang: str, *texts: str) -> None:
    from selenium.webdriver.common.by import By  # noqa: E402  (selenium: browser test only)

    html = driver.find_element(By.TAG_NAME, "html")
    assert html.get_attribute("dir") == direction and html.get_attribute("lang") == lang
    body = driver.find_element(By.TAG_NAME, "body")
    assert body.value_of_css_property("direction") == direction
    for text in texts:
        assert text in body.text
    blocked = [entry["message"] for entry in driver.get_log("browser")
               if "Content Security Policy" in entry["message"]]
    assert blocked == []
    # our stylesheet loaded under the policy (the browser's default h1 is 32px)
    assert driver.find_element(By.TAG_NAME, "h1").value_of_css_property("font-size") == "24px"


def wait_for(driver, part: str) -> None:
    """Until the page at a URL containing `part` has loaded (after a click)."""
    from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402  (browser test only)

    WebDriverWait(driver, 20).until(
        lambda d: part in d.current_url
        and d.execute_script("return document.readyState") == "complete")


def filter_by_status(driver, status: str) -> list[str]:
    from selenium.webdriver.common.by import By  # noqa: E402  (selenium: browser test only)
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, "status")).select_by_value(status)
    driver.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    wait_for(driver, f"status={status}")
    return [row.get_attribute("data-status")
            for row in driver.find_elements(By.CSS_SELECTOR, "#tickets tbody tr")]


# (locale, direction, customer, address, earlier ticket, this ticket, a line of its
#  text, the page's word for "ticket", the link to the list, the status chosen, and
#  the statuses listed then)
CASES = [
    ("fa", "rtl", "مریم احمدی <maryam@example.ir>", "billing@example.com",
     ("پرداخت قبلی", "سلام، پرداخت قبلی من ثبت نشد."),
     ("مبلغ فاکتور دو بار کسر شد", "سلام،\nامروز صبح مبلغ فاکتور دو بار از کارت بانکی‌ام کسر شد.\n"),
     "دو بار از کارت بانکی", "تیکت", "همه‌ی تیکت‌های شما", "closed", ["closed"]),
    ("ka", "ltr", "ლევან ჯავახიშვილი <levan@example.ge>", "support@example.com",
     ("როუტერი", "როუტერი არ მუშაობს."),
     ("ინტერნეტი საღამოობით ნელა მუშაობს", "გამარჯობა,\nსაღამოს 8 საათის შემდეგ სიჩქარე ეცემა.\n"),
     "სიჩქარე ეცემა", "ბილეთი", "ყველა თქვენი ბილეთი", "open_all", ["new"]),
]


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_persian_and_georgian_pages_in_chromium(browser, served):
    from selenium.webdriver.common.by import By  # noqa: E402  (selenium: browser test only)

    gw, base = served
    for lang, direction, who, to, earlier, this, line, word, to_list, status, listed in CASES:
        open_ticket(gw, base, who, to, *earlier)
        url = open_ticket(gw, base, who, to, *this)
        close_all_but_last(gw, who.split("<")[1].rstrip(">"))
        browser.get(url)
        check_page(browser, direction, lang, this[0], line, word)
        shot(browser, f"web-ticket-{lang}.png")
        browser.find_element(By.PARTIAL_LINK_TEXT, to_list).click()
        wait_for(browser, "/tickets/")
        check_page(browser, direction, lang, this[0], earlier[0])
        assert filter_by_status(browser, status) == listed
        shown = browser.find_element(By.ID, "tickets").text
        assert (earlier[0] in shown) == (status == "closed") and (this[0] in shown) != (status == "closed")
        shot(browser, f"web-list-{lang}.png")
