"""SMS: alerts and villagers without smartphones. Pre-approved templates with parameters only (never free
text), a provider interface with one real provider (Aliyun 短信服务, `aliyun.py`), and the providers'
per-number limits enforced before every send through the database (`sender.py`)."""

CHANNEL = "sms"
