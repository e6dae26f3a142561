"""The WeCom self-built app (企业微信自建应用) channel: callback URL mode in (`runner`), message/send out
(`transport`), the access token shared across processes (`token`), and the callback crypto behind one
module (`crypto`, the only user of wechatpy)."""

CHANNEL = "wecom"
