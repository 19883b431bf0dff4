"""The review page in a real headless Chromium (Debian's chromium + chromium-driver, driven by
Selenium) against the local server over a moto S3 HTTP server, so that presigned photo URLs
load in the browser: open, label three photos with the keyboard, reload, and find the three
decisions kept in S3 and the queue shorter by three. Never skipped: .ci/run installs both."""

from __future__ import annotations

import threading
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from grocery.review.server import ReviewApp, ReviewServer
from grocery.review.store import ReviewStore
from grocery_common import review_queue as rq
from tests.review.world import BUCKET, FixedLabels, keys, queue

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT_SECONDS = 10


@pytest.fixture
def moto_s3(aws_credentials):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    client = boto3.Session(region_name="us-east-1").client(
        "s3",
        endpoint_url=f"http://{host}:{port}",
        config=boto3.session.Config(signature_version="s3v4"),
    )
    client.create_bucket(Bucket=BUCKET)
    yield client
    server.stop()


@pytest.fixture
def review_server(moto_s3):
    app = ReviewApp(ReviewStore(moto_s3, BUCKET, reviewer="tester"), FixedLabels())
    server = ReviewServer(app)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def browser():
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        pytest.fail(
            f"the browser test needs Debian's chromium and chromium-driver ({', '.join(missing)} "
            "missing): apt-get install -y chromium chromium-driver (.ci/run does this)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    yield driver
    driver.quit()


def showing(driver, item_id: str) -> bool:
    """The page shows this item and its photo has loaded through the presigned URL."""
    return driver.execute_script(
        "const img = document.getElementById('photo');"
        "return document.body.dataset.item === arguments[0] && img.complete"
        " && img.naturalWidth > 0;",
        item_id,
    )


def text(driver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def test_label_three_photos_with_the_keyboard_and_reload(moto_s3, review_server, browser):
    items = queue(moto_s3, 5)
    wait = WebDriverWait(browser, WAIT_SECONDS)
    browser.get(review_server.url)
    wait.until(lambda d: showing(d, items[0].id))
    assert text(browser, "left") == "5"

    keys_pressed = ["1", "2", "gran\n"]  # the model's best guess, its second, a search + Enter
    for pressed, following in zip(keys_pressed, items[1:4], strict=True):
        ActionChains(browser).send_keys(pressed).perform()
        wait.until(lambda d, following=following: showing(d, following.id))

    browser.refresh()
    wait.until(lambda d: showing(d, items[3].id))  # the photo this reviewer still holds
    assert (text(browser, "done"), text(browser, "left")) == ("3", "2")
    assert text(browser, "agreement") == "33% (1 of 3 labelled)"

    decided = [
        rq.Decision.from_json(moto_s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        for key in keys(moto_s3, rq.DECISIONS_PREFIX)
    ]
    assert [(d.id, d.verdict, d.label, d.reviewer) for d in decided] == [
        (items[0].id, rq.LABELLED, "Banana", "tester"),
        (items[1].id, rq.LABELLED, "Plantain", "tester"),
        (items[2].id, rq.LABELLED, "Granny-Smith", "tester"),
    ]
    assert keys(moto_s3, rq.QUEUE_PREFIX) == [rq.queue_key(i.id) for i in items[3:]]
