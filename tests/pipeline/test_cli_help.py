"""`tfxp --help` as a new user reads it in an 80-column terminal."""

from typer.testing import CliRunner

from pipeline.cli import app


def _help(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], terminal_width=80, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.output


def test_long_flag_names_are_shown_whole():
    text = _help("serve")
    for flag in ("--model_config_file_poll_wait_seconds", "--file_system_poll_wait_seconds", "--rest_api_port"):
        assert flag in text


def test_boolean_flags_take_no_value():
    text = _help("run")
    assert "--no-cache" in text and "<bool>" not in text
    assert "--gate-policy" in text and "--span" in text


def test_every_command_group_is_listed():
    text = _help()
    for command in ("run", "report", "runs", "schema", "data", "serve", "predict", "compile", "submit"):
        assert f"  {command}" in text
