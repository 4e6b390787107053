"""``smokewatch``: run the monitor and API, serve the API alone, check a config, train."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import yaml

from service.config import AppConfig, ConfigError, load_config, redact_source, single_source_config

if TYPE_CHECKING:  # the heavy modules load only when a command needs them
    from service.alerts import AlertDispatcher
    from service.db.session import Database
    from service.evidence import EvidenceStore
    from service.metrics import Metrics

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Smokewatch: catches smoking in no-smoking areas and queues cases for review.")
log = logging.getLogger("smokewatch")
STOP = threading.Event()  # set by SIGTERM (and by tests) to end `run --no-api`

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="Cameras file (see cameras.example.yaml).")]
DatabaseOption = Annotated[str | None, typer.Option(help="SQLAlchemy URL; overrides the config (default sqlite:///smokewatch.db).")]
EvidenceOption = Annotated[Path | None, typer.Option(help="Evidence folder; overrides the config (default ./evidence).")]
SecureCookieOption = Annotated[bool, typer.Option(help="Mark the sign-in cookie Secure (HTTPS only); turn off only for plain-http tests.")]


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)-7s %(message)s",
                        datefmt="%Y-%m-%d %H:%M:%S")
    for noisy in ("uvicorn.access", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _fail(message: str) -> typer.Exit:
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(2)


def _load(config: Path | None, source: str | None, database_url: str | None, evidence_dir: Path | None) -> AppConfig:
    try:
        loaded = load_config(config) if config else AppConfig()
    except ConfigError as error:
        raise _fail(str(error)) from None
    if source is not None:
        loaded = single_source_config(source, loaded)
    storage = loaded.storage.model_copy(update={k: v for k, v in {"database_url": database_url, "evidence_dir": evidence_dir}.items()
                                                if v is not None})
    return loaded.model_copy(update={"storage": storage})


@app.command()
def run(
    source: Annotated[str | None, typer.Option("--source", "-s", help="One camera: video file, RTSP/HTTP URL or device index.")] = None,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    evidence_dir: EvidenceOption = None,
    host: Annotated[str | None, typer.Option(help="API address (default from config: 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="API port (default from config: 8000).")] = None,
    api: Annotated[bool, typer.Option(help="Serve the API in the same process.")] = True,
    secure_cookie: SecureCookieOption = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Watch cameras, confirm smoking, save evidence and open cases (with the API)."""
    _setup_logging(verbose)
    if (source is None) == (config is None):
        raise _fail("give exactly one of --source VIDEO_OR_URL (one camera) or --config cameras.yaml (a fleet)")
    settings = _load(config, source, database_url, evidence_dir)
    if not settings.cameras:
        raise _fail(f"{config}: no cameras configured")
    from detector import ModelLoadError
    from service.alerts import AlertDispatcher
    from service.db.session import Database
    from service.evidence import EvidenceStore
    from service.metrics import Metrics
    from service.monitor import Monitor, service_detector

    try:
        detector = service_detector(settings)
    except (ModelLoadError, ValueError) as error:
        raise _fail(f"cannot load the model: {error}") from None
    detector.warmup()
    log.info("model %s loaded", detector.version)
    database = Database(settings.storage.database_url)
    store = EvidenceStore(settings.storage.evidence_dir, settings.storage.min_free_mb)
    log.info("cases in %s, evidence in %s", redact_source(settings.storage.database_url), store.root.resolve())
    metrics = Metrics(storage_bytes=store.used_bytes)
    alerts = AlertDispatcher(database, settings.alerts)
    alerts.start()  # also resumes deliveries left pending by the last run
    monitor = Monitor(settings, database, store, detector, metrics, on_case_opened=alerts.case_opened)
    monitor.start()
    STOP.clear()
    try:
        if api:
            _serve(database, store, metrics, host or settings.api.host, port or settings.api.port, secure_cookie, settings, alerts)
        else:
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, lambda *_: STOP.set())
            while not STOP.wait(1.0):
                if monitor.finished():
                    break
    except KeyboardInterrupt:
        pass
    finally:
        log.info("stopping: finishing open events")
        monitor.stop()
        alerts.stop()
        database.dispose()


def _serve(database: Database, store: EvidenceStore, metrics: Metrics | None, host: str, port: int, secure_cookie: bool = True,
           settings: AppConfig | None = None, alerts: AlertDispatcher | None = None) -> None:
    import uvicorn

    from service.api.app import create_app
    from service.api.deps import AuthSettings
    from service.login_sessions import SessionSettings

    auth = AuthSettings(sessions=SessionSettings(cookie_secure=secure_cookie))
    application = create_app(database, store, metrics, auth, config=settings, alerts=alerts)
    log.info("API at http://%s:%d (docs at http://%s:%d/docs)", host, port, host, port)
    uvicorn.run(application, host=host, port=port, log_level="warning")


@app.command()
def serve(
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    evidence_dir: EvidenceOption = None,
    host: Annotated[str | None, typer.Option(help="API address.")] = None,
    port: Annotated[int | None, typer.Option(help="API port.")] = None,
    secure_cookie: SecureCookieOption = True,
) -> None:
    """Serve the API only (cases, events, evidence, cameras, metrics)."""
    _setup_logging(False)
    settings = _load(config, None, database_url, evidence_dir)
    from service.db.session import Database
    from service.evidence import EvidenceStore

    _serve(Database(settings.storage.database_url), EvidenceStore(settings.storage.evidence_dir), None,
           host or settings.api.host, port or settings.api.port, secure_cookie, settings)


@app.command("check-config")
def check_config(file: Annotated[Path, typer.Argument(help="Cameras file to validate.")]) -> None:
    """Validate a cameras file and print it with defaults merged into every camera."""
    try:
        loaded = load_config(file)
    except ConfigError as error:
        raise _fail(str(error)) from None
    typer.echo(yaml.safe_dump(loaded.model_dump(mode="json"), sort_keys=False, allow_unicode=True))
    typer.secho(f"{file}: OK, {len(loaded.cameras)} camera(s)", err=True, fg=typer.colors.GREEN)


def _database(config: Path | None, database_url: str | None) -> Database:
    from service.db.session import Database

    return Database(_load(config, None, database_url, None).storage.database_url)


@app.command("create-admin")
def create_admin(
    username: Annotated[str, typer.Option(help="The admin's username.")],
    password_file: Annotated[Path | None, typer.Option(help="Read the password from the first line of this file, not a prompt.")] = None,
    display_name: Annotated[str, typer.Option(help="Name shown in the case history.")] = "",
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Create an admin account (the first one, or another); asks for the password twice, hidden."""
    from service import accounts, audit

    if password_file is not None:
        try:
            lines = password_file.read_text(encoding="utf-8").splitlines()
        except OSError as error:
            raise _fail(f"cannot read {password_file}: {error.strerror or error}") from None
        password = lines[0] if lines else ""
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    database = _database(config, database_url)
    try:
        with database.session() as session:
            user = accounts.create_user(session, username, password, "admin", display_name=display_name)
            audit.Auditor(session, None, via="cli").record("user_created", "user", user.id, username=user.username, role="admin")
    except accounts.AccountError as error:
        raise _fail(f"admin not created: {error}") from None
    finally:
        database.dispose()
    typer.secho(f"admin {user.username!r} created", fg=typer.colors.GREEN)


audit_app = typer.Typer(no_args_is_help=True, help="The hash-chained audit trail.")
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(config: ConfigOption = None, database_url: DatabaseOption = None) -> None:
    """Check every entry's hash and link; exit 1 at the first broken entry, naming it and what is wrong."""
    from service.audit import verify_chain

    database = _database(config, database_url)
    try:
        with database.session() as session:
            report = verify_chain(session)
    finally:
        database.dispose()
    if not report.ok:
        typer.secho(f"BROKEN: {report.message}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1)
    typer.secho(f"OK: {report.entries} entries, chain intact", fg=typer.colors.GREEN)


@app.command()
def train(config: Annotated[Path, typer.Option(help="Training YAML, e.g. detector/training/cpu.yaml.")],
          resume: Annotated[bool, typer.Option(help="Continue the run from its last.pt.")] = False,
          pack: Annotated[bool, typer.Option(help="Prepare the data and write the config's pack for a GPU machine "
                                                  "instead of training (detector/training/GPU.md).")] = False,
          prepare: Annotated[bool, typer.Option(help="Only prepare the data: the training lists and the held-out "
                                                     "sets' YAMLs that 'evaluate images' and 'bench' read.")] = False,
          ) -> None:
    """Prepare the datasets and train the person + cigarette detector."""
    _setup_logging(False)
    from detector.training.train import TrainingConfig, run_step, step_from_flags

    try:
        step = step_from_flags(resume=resume, pack=pack, prepare=prepare)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    for line in run_step(TrainingConfig.from_yaml(config), step):
        typer.echo(line)


# The CLI is the composition root: the only place where service meets evaluation.
from evaluation.cli import bench, evaluate_app  # noqa: E402

app.add_typer(evaluate_app, name="evaluate")
app.command()(bench)
