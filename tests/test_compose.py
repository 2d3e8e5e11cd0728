"""Static checks of docker-compose.yml and the Dockerfile against the code.

There is no Docker engine where the tests run, so the stack is checked by what it
says: the engine's environment is made of real settings, the search attributes
registered by the admin-tools one-shot are exactly those the workflows use, the
commands run in containers exist in the CLI, and the services start in order.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer
import yaml
from temporalio.common import SearchAttributeIndexedValueType, SearchAttributeKey

import workflows.search
from dunning import codec
from dunning.cli.main import app
from dunning.settings import APP_ROLE, Settings
from schemas.channels import PARTNERS, partner_queue

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENGINE_IMAGE_SERVICES = {"migrate", "worker", "api"}

# The `--type` names of `temporal operator search-attribute create`.
CLI_TYPE_NAMES = {
    SearchAttributeIndexedValueType.TEXT: "Text",
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.DOUBLE: "Double",
    SearchAttributeIndexedValueType.BOOL: "Bool",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def env_of(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping, from either compose form."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


# `${NAME}`, `${NAME:-default}`, `${NAME:?error}`: compose's interpolation.
_INTERPOLATION = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::?([-?])([^}]*))?\}")


def interpolate(value: str, environ: dict[str, str]) -> str:
    """`value` as compose would pass it with `environ` as the shell's environment."""

    def one(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if environ.get(name):
            return environ[name]
        assert kind != "?", f"compose refuses to start without {name}: {rest}"
        return rest if kind == "-" else ""

    return _INTERPOLATION.sub(one, value)


def command_words(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    assert command, "service has no command"
    return shlex.split(command) if isinstance(command, str) else [str(w) for w in command]


def cli_has(words: list[str]) -> bool:
    """Whether `dunning WORDS...` names a command of the typer app (through its groups)."""
    # Duck-typed on `.commands`: recent typer vendors its own click, whose groups are
    # not `click.Group`.
    command: Any = typer.main.get_command(app)
    for word in words:
        subcommands = getattr(command, "commands", None)
        if subcommands is None:
            return True  # the rest are the command's own arguments
        if word not in subcommands:
            return False
        command = subcommands[word]
    return getattr(command, "commands", None) is None  # a bare group is not runnable


def published_host_ports(service: dict[str, Any]) -> dict[int, int]:
    """host port -> container port, from short (`[ip:]host:container`) or long syntax."""
    ports: dict[int, int] = {}
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            ports[int(entry["published"])] = int(entry["target"])
        else:
            parts = str(entry).split("/")[0].split(":")
            ports[int(parts[-2])] = int(parts[-1])
    return ports


def declared_search_attributes() -> dict[str, str]:
    keys = [v for v in vars(workflows.search).values() if isinstance(v, SearchAttributeKey)]
    return {key.name: CLI_TYPE_NAMES[key.indexed_value_type] for key in keys}


def test_compose_file_parses_as_compose_spec(compose: dict[str, Any]) -> None:
    assert "version" not in compose, "the compose spec has no `version:` key"
    assert {
        "postgresql",
        "temporal",
        "temporal-admin-tools",
        "temporal-ui",
        "audit-db",
        "migrate",
        "worker",
    } <= set(compose["services"])


def test_engine_services_are_built_from_this_repo(services: dict[str, dict[str, Any]]) -> None:
    for name in ENGINE_IMAGE_SERVICES:
        build = services[name].get("build")
        context = build.get("context") if isinstance(build, dict) else build
        assert context == ".", f"{name} must be built from the Dockerfile here"


def test_engine_environment_is_made_of_settings_fields(
    services: dict[str, dict[str, Any]],
) -> None:
    fields = set(Settings.model_fields)
    for name in ENGINE_IMAGE_SERVICES:
        env = env_of(services[name])
        assert env, f"{name} has no environment"
        for variable in env:
            assert variable.startswith("DUNNING_"), f"{name}: {variable} is not a DUNNING_ setting"
            field = variable.removeprefix("DUNNING_").lower()
            assert field in fields, f"{name}: {variable} is not a field of Settings"


def test_engine_environment_points_at_the_stack(services: dict[str, dict[str, Any]]) -> None:
    env = env_of(services["worker"])
    signing_key = env.pop("DUNNING_AUDIT_SIGNING_KEY")
    migrate = env_of(services["migrate"])
    owner_url = migrate.pop("DUNNING_DATABASE_OWNER_URL")
    assert env == migrate, "migrate has the worker's environment and the owner's URL"
    # Least privilege (docs/security.md): only the migration knows the owner's URL; the
    # workers and the API connect as the application role; only workers sign.
    assert "DUNNING_DATABASE_OWNER_URL" not in env
    assert re.fullmatch(r"\$\{DUNNING_AUDIT_SIGNING_KEY:\?[^}]+\}", signing_key), signing_key
    for name in ("migrate", "api"):
        assert "DUNNING_AUDIT_SIGNING_KEY" not in env_of(services[name]), name
    assert urlsplit(env["DUNNING_DATABASE_URL"]).username == APP_ROLE
    assert urlsplit(owner_url).username == "postgres"
    assert urlsplit(owner_url).hostname == urlsplit(env["DUNNING_DATABASE_URL"]).hostname
    assert env["DUNNING_TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["DUNNING_TEMPORAL_NAMESPACE"] == "default"
    assert env["DUNNING_TASK_QUEUE"] == "dunning"
    assert env["DUNNING_LOG_FORMAT"] == "json"
    url = interpolate(env["DUNNING_DATABASE_URL"], {})
    assert re.fullmatch(r"postgresql://[^@/]+@audit-db:5432/dunning", url), url
    audit_env = env_of(services["audit-db"])
    assert audit_env["POSTGRES_DB"] == "dunning"
    # The engine's settings parse this environment (a typo in a Literal would fail here),
    # with the codec keys an operator exports (see the compose file's header).
    key = base64.b64encode(bytes(32)).decode()
    shell = {"DUNNING_CODEC_KEY_ID": "k1", "DUNNING_CODEC_KEYS": json.dumps({"k1": key})}
    parsed = Settings.model_validate(
        {k.removeprefix("DUNNING_").lower(): interpolate(v, shell) for k, v in env.items()}
    )
    assert parsed.encryption
    assert codec.keyring(parsed) == codec.Keyring({"k1": bytes(32)}, "k1")


def test_engine_payload_keys_come_from_the_environment_and_are_required(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in ENGINE_IMAGE_SERVICES:
        env = env_of(services[name])
        for variable in ("DUNNING_CODEC_KEYS", "DUNNING_CODEC_KEY_ID"):
            assert re.fullmatch(rf"\$\{{{variable}:\?[^}}]+\}}", env[variable]), env[variable]
            with pytest.raises(AssertionError, match="compose refuses to start"):
                interpolate(env[variable], {})


def test_admin_tools_register_exactly_the_declared_search_attributes(
    services: dict[str, dict[str, Any]],
) -> None:
    declared = declared_search_attributes()
    assert declared, "no SearchAttributeKey found in workflows.search"
    script = "\n".join(command_words(services["temporal-admin-tools"]))
    created: dict[str, str] = {}
    for match in re.finditer(r"temporal operator search-attribute create ([^\n;|&>]*)", script):
        args = shlex.split(match.group(1))
        assert args[args.index("--namespace") + 1] == "default"
        name = args[args.index("--name") + 1]
        assert name not in created, f"{name} is created twice"
        created[name] = args[args.index("--type") + 1]
    assert created == declared
    assert "already exists" in script, "re-running the one-shot must tolerate existing attributes"


def test_ui_is_published_on_8233(services: dict[str, dict[str, Any]]) -> None:
    ui = services["temporal-ui"]
    assert published_host_ports(ui).get(8233) == 8080
    assert env_of(ui)["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert published_host_ports(services["temporal"]).get(7233) == 7233


def test_startup_order(services: dict[str, dict[str, Any]]) -> None:
    def condition(service: str, on: str) -> str:
        depends = services[service]["depends_on"]
        assert isinstance(depends, dict), f"{service}: depends_on needs conditions"
        return str(depends[on]["condition"])

    assert condition("worker", "migrate") == "service_completed_successfully"
    assert condition("worker", "temporal-admin-tools") == "service_completed_successfully"
    assert condition("migrate", "audit-db") == "service_healthy"
    assert condition("temporal", "postgresql") == "service_healthy"
    for db in ("postgresql", "audit-db"):
        assert services[db].get("healthcheck", {}).get("test"), f"{db} has no healthcheck"
    assert services["worker"]["deploy"]["replicas"] == 2


def test_workers_scale_with_compose_scale(services: dict[str, dict[str, Any]]) -> None:
    """`docker compose up --scale worker=N` (the compose header, README "Sizing"): one
    service whose replicas share nothing compose would have to make unique, on the one
    task queue."""
    worker = services["worker"]
    for unique in ("container_name", "hostname", "ports"):
        assert unique not in worker, f"worker: {unique} would stop --scale"
    assert "DUNNING_TASK_QUEUE" in env_of(worker)
    assert "--scale worker=N" in COMPOSE_FILE.read_text(encoding="utf-8")
    runs_workers = [
        name
        for name, service in services.items()
        if service.get("command") and command_words(service)[:2] == ["dunning", "worker"]
    ]
    assert runs_workers == ["worker"], "one worker service, scaled"


def test_migrate_runs_dunning_db_migrate(services: dict[str, dict[str, Any]]) -> None:
    assert command_words(services["migrate"]) == ["dunning", "db", "migrate"]
    assert command_words(services["worker"]) == ["dunning", "worker"]


def test_api_serves_on_8000_from_every_interface_after_migrations(
    services: dict[str, dict[str, Any]],
) -> None:
    api = services["api"]
    words = command_words(api)
    assert words[:2] == ["dunning", "api"]
    options = dict(zip(words[2::2], words[3::2], strict=True))
    assert options["--host"] == "0.0.0.0"
    port = int(options.get("--port", "8000"))
    assert published_host_ports(api).get(8000) == port
    command: Any = typer.main.get_command(app).commands["api"]  # type: ignore[attr-defined]
    declared = {opt for param in command.params for opt in param.opts}
    assert set(options) <= declared, f"unknown options {set(options) - declared}"
    depends = api["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    worker = env_of(services["worker"])
    worker.pop("DUNNING_AUDIT_SIGNING_KEY")
    assert env_of(api) == worker, "the API has the workers' environment, without their key"
    assert "/healthz" in " ".join(command_words({"command": api["healthcheck"]["test"]}))


@pytest.mark.parametrize("service", sorted(ENGINE_IMAGE_SERVICES))
def test_engine_commands_exist_in_the_cli(
    services: dict[str, dict[str, Any]], service: str
) -> None:
    words = command_words(services[service])
    assert words[0] == "dunning"
    assert cli_has(words[1:]), f"`{' '.join(words)}` is not a command of the dunning CLI"


def test_dockerfile_default_command_exists_in_the_cli() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert re.search(r"^USER (?!root\b|0\b)\S+", text, re.M), "the image must not run as root"
    assert "pip install --no-cache-dir ." in text
    instructions = {
        kind: json.loads(args)
        for kind, args in re.findall(r"^(CMD|ENTRYPOINT)\s+(\[.*\])\s*$", text, re.M)
    }
    words = [*instructions.get("ENTRYPOINT", []), *instructions.get("CMD", [])]
    assert words[:1] == ["dunning"], f"the image runs {words}, not the dunning CLI"
    assert cli_has(words[1:]), f"`{' '.join(words)}` is not a command of the dunning CLI"


def test_every_partners_queue_has_one_partition(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    """docs/providers.md, Pacing: a paced partner's backlog goes out oldest first only
    on one partition and without sync match past a backlog; a partner added to the
    channel table needs its lines here."""
    temporal = services["temporal"]
    [mounted] = temporal["configs"]
    assert mounted["source"] == "temporal-dynamic-config"
    assert mounted["target"] == "/etc/temporal/" + env_of(temporal)["DYNAMIC_CONFIG_FILE_PATH"]
    config = yaml.safe_load(compose["configs"]["temporal-dynamic-config"]["content"])
    queue = env_of(services["worker"])["DUNNING_TASK_QUEUE"]
    expected = {partner_queue(queue, partner) for partner in PARTNERS}
    for key, value in (
        ("matching.numTaskqueueReadPartitions", 1),
        ("matching.numTaskqueueWritePartitions", 1),
        ("matching.backlogNegligibleAge", "0s"),
    ):
        queues = {c["constraints"]["taskQueueName"] for c in config[key] if c["value"] == value}
        assert queues == expected, key
