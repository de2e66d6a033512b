"""The statuses of a deployment and the moves between them."""

from enum import StrEnum


class DeploymentStatus(StrEnum):
    QUEUED = "queued"  # recorded; waits for the environment's active deployment to end, or for a worker
    WAITING_FOR_APPROVAL = "waiting_for_approval"  # the before-deploy gate needs more approvals
    PREPARING = "preparing"  # the adapter installs the release beside the live one, at 0 % of the traffic
    READY = "ready"  # the release is installed and healthy, still at 0 %
    PROGRESSING = "progressing"  # a strategy step is running (its weight is in `weight`)
    PAUSED = "paused"  # waits for a time, for a promote, or for the before-promote approvals
    PROMOTING = "promoting"  # the release is being given all the traffic
    SUCCEEDED = "succeeded"  # the release is live with 100 % of the traffic
    ROLLING_BACK = "rolling_back"  # traffic goes back to the previously live release
    ROLLED_BACK = "rolled_back"  # the previously live release has all the traffic again
    FAILED = "failed"  # the deployment could not start or finish; the live release kept its traffic
    SUPERSEDED = "superseded"  # a newer deployment to the same environment replaced it before it started


# A deployment in one of these owns the environment's traffic; at most one per environment.
ACTIVE = frozenset({
    DeploymentStatus.PREPARING, DeploymentStatus.READY, DeploymentStatus.PROGRESSING, DeploymentStatus.PAUSED,
    DeploymentStatus.PROMOTING, DeploymentStatus.ROLLING_BACK,
})
# A deployment in one of these waits to start; at most one per environment.
PENDING = frozenset({DeploymentStatus.QUEUED, DeploymentStatus.WAITING_FOR_APPROVAL})
TERMINAL = frozenset({
    DeploymentStatus.SUCCEEDED, DeploymentStatus.ROLLED_BACK, DeploymentStatus.FAILED, DeploymentStatus.SUPERSEDED,
})

TRANSITIONS = {
    DeploymentStatus.QUEUED: {DeploymentStatus.WAITING_FOR_APPROVAL, DeploymentStatus.PREPARING,
                              DeploymentStatus.SUPERSEDED, DeploymentStatus.FAILED},
    DeploymentStatus.WAITING_FOR_APPROVAL: {DeploymentStatus.QUEUED, DeploymentStatus.PREPARING,
                                            DeploymentStatus.SUPERSEDED, DeploymentStatus.FAILED},
    DeploymentStatus.PREPARING: {DeploymentStatus.READY, DeploymentStatus.ROLLING_BACK, DeploymentStatus.FAILED},
    DeploymentStatus.READY: {DeploymentStatus.PROGRESSING, DeploymentStatus.PAUSED, DeploymentStatus.PROMOTING,
                             DeploymentStatus.ROLLING_BACK},
    DeploymentStatus.PROGRESSING: {DeploymentStatus.PROGRESSING, DeploymentStatus.PAUSED, DeploymentStatus.PROMOTING,
                                   DeploymentStatus.ROLLING_BACK},
    DeploymentStatus.PAUSED: {DeploymentStatus.PROGRESSING, DeploymentStatus.PROMOTING, DeploymentStatus.ROLLING_BACK},
    DeploymentStatus.PROMOTING: {DeploymentStatus.PROGRESSING, DeploymentStatus.SUCCEEDED,
                                 DeploymentStatus.ROLLING_BACK},
    DeploymentStatus.ROLLING_BACK: {DeploymentStatus.ROLLED_BACK, DeploymentStatus.FAILED},
}


class Gate(StrEnum):
    DEPLOY = "deploy"  # approvals needed before the release is installed
    PROMOTE = "promote"  # approvals needed before the release gets all the traffic
