"""A project's webhook delivery log: the list with pages, one delivery's headers and body, and redelivery."""

from flask import abort, flash, redirect, render_template, request, url_for

from app.auth.audit import audit
from app.auth.permissions import MAX_ID, Action, project_by_name, requires
from app.forges import delivery_log
from app.models import Project, WebhookDelivery
from app.web import web
from app.web.access import allowed


def _is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def _load(project: Project, delivery_id: int) -> WebhookDelivery:
    delivery = delivery_log.find(project, delivery_id) if 0 < delivery_id <= MAX_ID else None
    return delivery or abort(404, f"Project {project.name!r} has no webhook delivery {delivery_id}.")


def _list_context(project: Project, page_number: int, **extra) -> dict:
    return {"project": project, "page": delivery_log.list_page(project, page_number),
            "can_redeliver": allowed(Action.REDELIVER, project), "notice": None, "problem": None, **extra}


@web.get("/projects/<name>/webhook-deliveries")
@requires(Action.VIEW_DELIVERIES, project_by_name)
def webhook_deliveries(name: str):
    """List the webhook deliveries the project received, newest first, a page at a time."""
    project = project_by_name(name)
    context = _list_context(project, request.args.get("page", 1, type=int))
    if _is_htmx():
        return render_template("deliveries/_list.html", **context)
    return render_template("deliveries/index.html", **context)


@web.get("/projects/<name>/webhook-deliveries/<int:delivery_id>")
@requires(Action.VIEW_DELIVERIES, project_by_name)
def webhook_delivery(name: str, delivery_id: int):
    """Show one delivery: the response it got, the headers kept (never a signature) and the body, indented."""
    project = project_by_name(name)
    delivery = _load(project, delivery_id)
    return render_template("deliveries/show.html", project=project, delivery=delivery,
                           headers=delivery_log.shown_headers(delivery), body=delivery_log.body_preview(delivery),
                           run=delivery_log.run_of(delivery), can_redeliver=allowed(Action.REDELIVER, project))


@web.post("/projects/<name>/webhook-deliveries/<int:delivery_id>/redeliver")
@requires(Action.REDELIVER, project_by_name)
def webhook_redeliver(name: str, delivery_id: int):
    """Process a stored delivery again; HTMX gets the first page of the list with the outcome, a form a redirect."""
    project = project_by_name(name)
    delivery = _load(project, delivery_id)
    target = f"delivery {delivery_id} of project {name}"

    try:
        result = delivery_log.redeliver(project, delivery)
    except delivery_log.RedeliveryError as error:
        audit("delivery_redeliver", target=target, outcome="failure", detail=str(error))
        return _respond(project, str(error), 409)
    audit("delivery_redeliver", target=target,
          detail=f"status {result.status_code}, new delivery {result.delivery_id}: {result.reason}")
    return _respond(project, f"Delivery {delivery_id} redelivered as delivery {result.delivery_id} "
                             f"(HTTP {result.status_code}): {result.reason}", 200)


def _respond(project: Project, message: str, status: int):
    if not _is_htmx():
        flash(message)
        return redirect(url_for("web.webhook_deliveries", name=project.name))
    outcome = {"notice": message} if status < 400 else {"problem": message}
    return render_template("deliveries/_list.html", **_list_context(project, 1, **outcome)), status


@web.app_template_global("can_view_deliveries")
def can_view_deliveries(project: Project) -> bool:
    """Return whether the project tabs show the delivery log to the signed-in user."""
    return allowed(Action.VIEW_DELIVERIES, project)
