"""One router per capability: parse -> one service call -> serialise (the HTTP twin of app_pages/)."""
