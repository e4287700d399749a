"""Piccolo's configuration module (`PICCOLO_CONF=storage.piccolo_conf`): the engine and the apps."""

from piccolo.conf.apps import AppRegistry

from storage.database import configured_url, engine_for

DB = engine_for(configured_url())

APP_REGISTRY = AppRegistry(apps=["storage.piccolo_app"])
