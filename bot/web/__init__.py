"""The web dashboard (`bangfu web`): leaders, township and county officers over the same database and
services as the chat. aiohttp.web serves it (see README, "Web dashboard")."""
