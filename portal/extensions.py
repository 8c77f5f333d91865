"""Flask extensions, created once here and bound to the app in `create_app`."""
from __future__ import annotations

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from portal.core import rate_limits  # noqa: F401  (registers the swept-memory:// storage)
from portal.core.models import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
mail = Mail()
csrf = CSRFProtect()
login_manager = LoginManager()
babel = Babel()
limiter = Limiter(key_func=get_remote_address)
