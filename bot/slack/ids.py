"""Every Slack callback, action and block id vfbot uses; listeners and builders share these."""

from __future__ import annotations

COMMAND = "/vf"

# -- views ---------------------------------------------------------------------------------------
CREATE_VIEW = "vf_create"  # the create modal (callback_id)
REJECT_VIEW = "vf_reject_reason"  # asks an optional reason before rejecting
CONFIRM_VIEW = "vf_confirm"  # generic confirmation modal for day-2 actions (issue 5)
HOME_VIEW = "vf_home"

# -- create modal input blocks (block_id == action_id) ------------------------------------------
B_PROJECT = "project_name"
B_NAME = "name"
B_COUNT = "count"
B_GROUP = "hypervisor_group"
B_TEMPLATE = "template"
B_MEMORY = "memory"
B_DISK = "disk"
B_CPU = "cpu"
B_SSH_KEY = "ssh_key"
B_PROFILE = "network_profile"
B_PUBLIC_IP = "public_ip"
B_BANDWIDTH = "bandwidth"
B_VOLUME_SIZE = "volume_size"
B_VOLUME_MOUNT = "volume_mount"
B_FILE = "request_file"
B_LIFETIME = "lifetime"  # how long the servers live (`expires_in`)
B_REASON = "reason"
B_LOADING = "loading"  # context block shown while panel choices load

CREATE_INPUT_BLOCKS = (
    B_PROJECT,
    B_NAME,
    B_COUNT,
    B_LIFETIME,
    B_GROUP,
    B_TEMPLATE,
    B_MEMORY,
    B_DISK,
    B_CPU,
    B_SSH_KEY,
    B_PROFILE,
    B_PUBLIC_IP,
    B_BANDWIDTH,
    B_VOLUME_SIZE,
    B_VOLUME_MOUNT,
    B_FILE,
)

# A select option with this value means "use the package/setting default": the field stays unset.
OPTION_DEFAULT = "vfbot:package-default"  # never a real key name, unlike "default"

# -- message buttons (action_id); the button value is the request id as a string ---------------
APPROVE = "vf_approve"
REJECT = "vf_reject"
RETRY_FAILED = "vf_retry_failed"
CLEANUP = "vf_cleanup"

# -- day-2 operations --------------------------------------------------------------------------
B_DELAY = "delay"  # confirm modal: optional delete delay in minutes (0-43800, panel `delay`)
DELETE_APPROVE = "vf_delete_approve"  # operation message buttons; the value is the operation id
DELETE_REJECT = "vf_delete_reject"
LIST_PAGE = "vf_list_page"  # `/vf list` next page; the value is `ops.list_page_value(...)`
HOME_REFRESH = "vf_home_refresh"  # App Home: publish the view again

# -- server lifetimes: the expiry reminder's controls; the value names the instance -----------
EXPIRY_ACTIONS = "vf_expiry_actions"  # block_id of the reminder's actions
EXPIRY_EXTEND = "vf_expiry_extend"  # static_select; option value "<instance id>:<seconds>"
EXPIRY_DELETE = "vf_expiry_delete"  # button (with a confirm dialog); value: the instance id
EXPIRY_KEEP = "vf_expiry_keep"  # button, admins only; value: the instance id
