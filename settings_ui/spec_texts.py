"""Words staff read in the connector form, taken from the specification's Settings Reference.

Kept in one module so the admin says what the user documentation says, and a change of wording
is one edit (Hull's user documentation of the connector; webhook topics with docs/decisions.md#webhook-topics' copy fixes).
"""

from __future__ import annotations

from typing import NamedTuple

GETTING_STARTED = (
    "First thing to do is to authorize the connector against the correct Intercom app. Once this is done "
    "the rest of the settings take effect. The integration synchronizes users, leads, events and companies."
)
LEADS = (
    "By default the connector uses email to resolve Hull users to Intercom leads (Lead Identity). For outgoing "
    "traffic it searches Intercom for leads matching the identity strategy: a match is updated, otherwise a new "
    "lead is created."
)
USERS = (
    "By default the connector uses email and external_id to resolve Hull users to Intercom users (User Identity). "
    "A match is updated, otherwise a new Intercom user is created."
)
COMPANIES = "By default the connector uses domain and external_id to resolve Hull accounts to Intercom companies."
EVENTS = (
    "Outgoing: Hull events sent to Intercom on the corresponding lead or user. Incoming: the Intercom webhook "
    "topics the connector acts on."
)
FETCHING = (
    "Fetch All is a manual action that retrieves every contact or company in your Intercom workspace. "
    "Incremental Fetch is a background job that runs at the given interval to retrieve the latest updated ones."
)
# "Linking website anonymous traffic with Intercom Leads", in one line, beside the snippet tag.
WEBSITE_SNIPPET = (
    "Linking website anonymous traffic with Intercom Leads: with Hull.js on your website, add this tag to its "
    "<head>. The Intercom visitor id is added to the visitor's aliases, linking the Intercom lead and the online "
    "visitor profile, and Hull.js tracking and traits calls are also sent to Intercom."
)
ADVANCED = "Settings for migrating from the legacy connector and for deleted profiles and linking."

HELP = {
    "synchronized_lead_segments": (
        "Lead Filter: the segments Hull users must be in to be sent to Intercom as leads. If empty, Hull will "
        "not send any users. A user only needs to match a single segment. A user in a Lead Filter segment AND "
        "a User Filter segment is sent as a lead. ALL sends everyone."
    ),
    "tag_leads": "Tag Leads: update Intercom leads' tags with the names of their Hull segments.",
    "convert_leads": "Convert Leads: convert an Intercom lead into a user when Hull sends the person as a user. Off by default.",
    "synchronized_user_segments": (
        "User Filter: the segments Hull users must be in to be sent to Intercom as users. If empty, Hull will "
        "not send any users. A user only needs to match a single segment. ALL sends everyone."
    ),
    "tag_users": "Tag Users: update Intercom users' tags with the names of their Hull segments.",
    "send_batch_as": "Send Batch As: whether users pushed in a manual batch (export) go to Intercom as users or as leads.",
    "synchronized_account_segments": (
        "Companies Filter: the segments Hull accounts must be in to be sent to Intercom. If empty, Hull will not "
        "send any accounts. An account only needs to match a single segment. ALL sends every account."
    ),
    "tag_companies": "Tag Companies: update Intercom companies' tags with the names of their Hull segments.",
    "send_events": "Send Events: master switch for Hull → Intercom events.",
    "outgoing_events": (
        "Hull Events Whitelist: which Hull events are sent to Intercom, one name per line. Wildcards work "
        "(Viewed *); all_events sends every event. The Hull user must be in one of the whitelisted segments (User or Lead)."
    ),
    "receive_events": "Receive Events: master switch for every Intercom webhook, including user.created.",
    "incoming_events": (
        "Intercom Events Whitelist: the webhook topics the connector acts on. The defaults are user.created, "
        "contact.created and user.deleted. Subscribe your Intercom app's webhooks to the same topics."
    ),
    "fetch_users": "Incremental fetch of users: a background job that retrieves the latest updated users.",
    "fetch_leads": "Incremental fetch of leads: a background job that retrieves the latest updated leads.",
    "fetch_companies": "Incremental fetch of companies: a background job that retrieves the latest updated companies.",
    "ignore_deleted_users": "Do not send Hull users that were deleted in Intercom.",
    "mark_deleted_users": (
        "Handle user.deleted: mark the Hull profile as deleted in Intercom (deleted_at) and forget its Intercom id. "
        "Intercom only sends it when a single user or lead is archived, never for bulk or permanent deletions."
    ),
    "ignore_deleted_accounts": "Do not send Hull accounts that were deleted in Intercom.",
    "mark_deleted_accounts": "Mark Hull accounts whose Intercom company was deleted.",
    "link_users_in_hull": (
        "Link Hull users to Hull accounts from their Intercom company. This creates a Hull account for every "
        "linked Intercom company."
    ),
    "link_users_in_service": "Create the user's Hull account as an Intercom company and attach the contact to it.",
}


class Topic(NamedTuple):
    description: str
    action: str


# The spec's table, in its order. visitor.signed_up and company.created carry docs/decisions.md#webhook-topics' fixes
# of the spec's copy error ("Admin closed conversation").
INCOMING_TOPICS: dict[str, Topic] = {
    "conversation.user.created": Topic("Customer or lead initiated message", "Create a new event “User started conversation”"),
    "conversation.user.replied": Topic("Customer or lead replies", "Create a new event “User replied to conversation”"),
    "conversation.admin.replied": Topic("Admin conversation replies", "Create a new event “Admin replied to conversation”"),
    "conversation.admin.single.created": Topic("Admin initiated 1:1 conversation", "Create a new event “Admin started conversation”"),
    "conversation.admin.assigned": Topic("Admin conversation assignments", "Create a new event “Admin assigned conversation”"),
    "conversation.admin.opened": Topic("Admin opens conversation", "Create new event “Admin opened conversation”"),
    "conversation.admin.closed": Topic("Admin closes conversation", "Create a new event “Admin closed conversation”"),
    "conversation.admin.noted": Topic("Admin added a note to conversation", "Create a new event “Admin added note to conversation”"),
    "conversation.admin.snoozed": Topic("Admin snoozed a conversation", "Create a new event “Admin snoozed conversation”"),
    "conversation.admin.unsnoozed": Topic("Admin unsnoozed a conversation", "Create a new event “Admin unsnoozed conversation”"),
    "conversation_part.tag.created": Topic("Conversation part was tagged", "Create a new event “Conversation Part Tag Added”"),
    "conversation_part.redacted": Topic("Conversation part was redacted", "Create a new event “Conversation Part Redacted”"),
    "user.created": Topic("User creations", "Create a new user in Hull or update an existing one."),
    "user.deleted": Topic(
        "User deletions. Not for bulk operations (only when a single user or lead is archived).", "Update user in Hull."
    ),
    "user.unsubscribed": Topic("User unsubscribes", "Create a new event “Unsubscribed from emails”"),
    "user.tag.created": Topic("User being tagged", "If the tag does not match a segment in Hull a new event “Added Tag” is created."),
    "user.tag.deleted": Topic(
        "User being untagged. Not for bulk deletions.", "If the tag does not match a segment in Hull a new event “Removed Tag” is created."
    ),
    "user.email.updated": Topic("User’s email address being updated", "Update user in Hull."),
    "contact.created": Topic("Lead creations", "Create a new user in Hull or update an existing one."),
    "contact.added_email": Topic("Lead added an email", "Create a new event “Updated email address”"),
    "contact.signed_up": Topic("Lead converting to a Customer", "Update user in Hull and set trait intercom_lead/is_lead to false."),
    "contact.tag.created": Topic("Lead being tagged", "If the tag does not match a segment in Hull a new event “Added Tag” is created."),
    "contact.tag.deleted": Topic("Lead being untagged", "If the tag does not match a segment in Hull a new event “Removed Tag” is created."),
    "visitor.signed_up": Topic("Visitor converted to a User", "Create or update the new user in Hull."),
    "company.created": Topic("Company created", "Create or update the account in Hull."),
}
