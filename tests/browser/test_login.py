from tests.browser.conftest import log_in, shot


def test_log_in_and_out(page, alice):
    page.goto("/")
    assert "/login/" in page.url  # the console needs a session
    page.fill("#id_username", "alice")
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    assert page.locator(".form-errors").is_visible()
    shot(page, "login-error")

    log_in(page, alice)
    assert page.locator(".brand").inner_text() == "hookstream"
    assert page.locator("#org-switch-select").input_value() == alice.org.id
    page.click("text=Log out")
    page.wait_for_url("**/login/")
