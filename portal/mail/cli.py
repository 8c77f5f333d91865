"""Mail commands (`flask send-mail`) are added by the delivery module."""
