"""Typed settings, read once at start-up from the environment or a .env file (prefix BANGFU_)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent


def data_dir(name: str) -> Path:
    """Where a shipped data folder (locales, knowledge) lives: the checkout, or inside the wheel."""
    for candidate in (REPO_DIR / name, PACKAGE_DIR / "_data" / name):
        if candidate.is_dir():
            return candidate
    return REPO_DIR / name


#: connections a bot process keeps beside those of its updates in flight: the in-process scheduler's tick
#: (one transaction at a time, held for the tick), the outbox sender (its claims and per-message marks,
#: one statement each) and the runner's own short writes (sent-marks, a message parked after a failed send)
DB_POOL_EXTRA = 3


@dataclass(frozen=True)
class WeComConfig:
    """The WeCom self-built app's settings, all present (see Settings.require_wecom)."""

    corp_id: str
    agent_id: int
    secret: str
    token: str
    aes_key: str
    path: str


class Settings(BaseSettings):
    """All configuration of a Bangfu deployment."""

    model_config = SettingsConfigDict(env_prefix="BANGFU_", env_file=".env", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///var/bangfu.sqlite3"
    # SQLite only: run the bot's per-update statements on the event-loop thread (bot.store.sqlite_loop)
    # instead of aiosqlite's worker thread; the scheduler and exports always use the thread.
    sqlite_on_loop: bool = True
    # Run `bangfu run`, `bangfu scheduler` and `bangfu web` on uvloop when it is installed (bot.eventloop);
    # false: asyncio's own event loop. Not on Windows (no uvloop there): always asyncio's.
    uvloop: bool = True
    # The cyclic garbage collector's generation-0 threshold in the bot process (`bangfu run`), set once
    # the start-up heap is frozen; 0 leaves Python's (700). Raising it (50,000) measured no steady gain in CPU
    # per update (bench/core_bench.py and bench/e2e_bench.py `--gc-gen0 700 50000`) with the heap frozen.
    gc_gen0_threshold: int = Field(default=0, ge=0, le=10**7)
    telegram_token: SecretStr | None = None
    telegram_api_url: str | None = None  # root URL of a self-hosted Bot API server
    bot_username: str | None = None  # the bot's @username (without @), for invite links
    webhook_url: str | None = None  # public URL; when set, runners use webhook mode
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443
    webhook_secret: SecretStr | None = None
    redis_url: str | None = None
    # How many updates one bot process runs through the core at once (PostgreSQL, threaded SQLite): each
    # holds one database connection from its first statement to its commit, and never asks for a second.
    # Further updates wait their turn in arrival order (each user's stay in order anyway). Not much lower: long
    # polling hands out again, with each getUpdates, every update still waiting (bench/e2e_bench.py: at 8,
    # twice the getUpdates calls per update of 16, no faster).
    updates_in_flight: int = Field(default=16, ge=1, le=1000)
    # PostgreSQL connections a bot process (`bangfu run`) keeps open; 0: updates_in_flight + DB_POOL_EXTRA
    # (the in-process scheduler's tick, the outbox sender's writes, the runner's sent-marks and parked
    # messages). A pool smaller than updates_in_flight only makes updates wait for a connection.
    db_pool_size: int = Field(default=0, ge=0, le=1000)
    # A Telegram runner sends an update's messages itself right after the commit; the outbox sender takes
    # over whatever the runner has not confirmed this many seconds later (the runner died, say).
    outbox_handover_s: float = 30.0
    # WeCom self-built app (企业微信自建应用); README "WeCom" says where each value is in the admin console.
    wecom_corp_id: str | None = None  # 企业ID
    wecom_agent_id: int | None = None  # AgentId
    wecom_secret: SecretStr | None = None  # Secret
    wecom_token: SecretStr | None = None  # 接收消息 Token
    wecom_aes_key: SecretStr | None = None  # 接收消息 EncodingAESKey
    wecom_api_url: str = "https://qyapi.weixin.qq.com"
    wecom_listen: str = "127.0.0.1:8081"  # host:port the callback URL is served on (behind the https proxy)
    wecom_path: str = "/wecom/callback"
    # The web dashboard (bangfu web): the public address links point to, where it listens, cookies
    web_url: str = "http://127.0.0.1:8090"  # as users reach it (https://… behind the reverse proxy)
    web_listen: str = "127.0.0.1:8090"
    web_secure_cookies: bool | None = None  # None: Secure when web_url is https
    web_session_hours: int = 12
    # 微信客服 (WeChat customer service) on the same corp: the app above must be granted the 微信客服 API.
    wechat_kf_open_kfid: str | None = None  # the 客服账号 open_kfid (wk...)
    wechat_kf_contact_url: str | None = None  # its 客服链接 (kf/add_contact_way); fetched when unset
    # SMS (pre-approved templates only; README "SMS").
    sms_provider: str | None = None  # "aliyun"
    sms_access_key_id: str | None = None
    sms_access_key_secret: SecretStr | None = None
    sms_sign_name: str | None = None  # 短信签名
    sms_api_url: str = "https://dysmsapi.aliyuncs.com/"
    sms_templates_file: Path | None = None  # TOML; default bot/sms/templates.toml
    sms_alert_after_hours: float = 4.0  # an unanswered WeCom alert goes by SMS after this long
    default_language: str = "zh_CN"
    timezone: str = "Asia/Shanghai"
    county: str | None = None  # county code for policy figures and rules overrides
    locales_dir: Path = data_dir("locales")
    knowledge_dir: Path = data_dir("knowledge")
    media_dir: Path = Path("var/media")
    rules_file: Path | None = None
    visit_far_meters: int = 1000  # a visit farther than this from the household is flagged
    visit_photo_required: bool = False
    max_text_length: int = 1000
    messages_per_minute: int = 30  # per chat account; the next one is told to slow down, then quiet; 0: off
    # per group chat (all its members together, on top of each one's own budget); private chats are not
    # counted for it; the next one is answered once in the group, then quiet; 0: off
    messages_per_minute_per_group: int = 60
    draft_keep_days: int = 7
    # Key of the HMAC-SHA256 that stands for a resident ID number (roster import, department lists,
    # self-reports): set one per county and keep it secret; without it no ID is matched.
    id_hash_key: SecretStr | None = None
    log_level: str = "INFO"

    def pool_size(self) -> int:
        """The bot process's PostgreSQL pool: db_pool_size, else updates_in_flight + DB_POOL_EXTRA."""
        return self.db_pool_size or self.updates_in_flight + DB_POOL_EXTRA

    def id_key(self) -> str:
        """The ID hashing key, or "" when none is set."""
        return self.id_hash_key.get_secret_value() if self.id_hash_key is not None else ""

    def require_token(self) -> str:
        """The bot token, or a clear error naming the missing variable."""
        if self.telegram_token is None or not self.telegram_token.get_secret_value():
            raise SystemExit("BANGFU_TELEGRAM_TOKEN is not set: the Telegram runners need a bot token.")
        return self.telegram_token.get_secret_value()

    def require_wecom(self) -> WeComConfig:
        """The WeCom settings, or a clear error naming the missing variables."""
        values = {
            "BANGFU_WECOM_CORP_ID": self.wecom_corp_id,
            "BANGFU_WECOM_AGENT_ID": self.wecom_agent_id,
            "BANGFU_WECOM_SECRET": self.wecom_secret.get_secret_value() if self.wecom_secret else None,
            "BANGFU_WECOM_TOKEN": self.wecom_token.get_secret_value() if self.wecom_token else None,
            "BANGFU_WECOM_AES_KEY": self.wecom_aes_key.get_secret_value() if self.wecom_aes_key else None,
        }
        missing = [k for k, v in values.items() if v in (None, "")]
        if missing:
            raise SystemExit(f"{', '.join(missing)} not set: the WeCom channel needs them (README, WeCom).")
        return WeComConfig(str(self.wecom_corp_id), int(self.wecom_agent_id or 0), str(values["BANGFU_WECOM_SECRET"]),
                           str(values["BANGFU_WECOM_TOKEN"]), str(values["BANGFU_WECOM_AES_KEY"]), self.wecom_path)
