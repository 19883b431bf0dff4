"""Real-time mode's optional schedule: at the end of the in-service hours the variant's
capacity drops to 1 instance (a real-time endpoint without inference components cannot go
below 1), at their start it returns to endpoint_min_instances..endpoint_max_instances.

Application Auto Scaling scheduled actions on the variant's DesiredInstanceCount (cron in
UTC): https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-scheduled-scaling.html
Scaling to zero needs inference components:
https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-zero-instances.html
"""

from __future__ import annotations

from aws_cdk import aws_applicationautoscaling as autoscaling

from stacks.serving.mode_config import Schedule

# A real-time variant's floor.
OFF_HOURS_INSTANCES = 1


def scheduled_actions(
    schedule: Schedule, *, endpoint_name: str, min_instances: int, max_instances: int
) -> list[autoscaling.CfnScalableTarget.ScheduledActionProperty]:
    action = autoscaling.CfnScalableTarget
    return [
        action.ScheduledActionProperty(
            scheduled_action_name=f"{endpoint_name}-in-service",
            schedule=schedule.cron(schedule.start_hour),
            scalable_target_action=action.ScalableTargetActionProperty(
                min_capacity=min_instances, max_capacity=max_instances
            ),
        ),
        action.ScheduledActionProperty(
            scheduled_action_name=f"{endpoint_name}-off-hours",
            schedule=schedule.cron(schedule.end_hour),
            scalable_target_action=action.ScalableTargetActionProperty(
                min_capacity=OFF_HOURS_INSTANCES, max_capacity=OFF_HOURS_INSTANCES
            ),
        ),
    ]
