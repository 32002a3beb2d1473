"""What the pages share: the frame (router), this browser session (session), the Train page's settings as
a draft and a link (draft), live charts (charts) and fragments that keep their timer (fragments)."""
