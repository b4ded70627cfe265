"""Slack: collecting the notebooks students share, a receipt for each, and their feedback by DM.

The files, in pipeline order (each imports only those above it):
  client.py          the bot token (environment or .env) and a WebClient that retries rate limits and server errors
  download.py        fetching one shared file: Slack's hosts only, the token only to slack.com, redirects checked,
                     a size cap; SlackProblem
  collector.py       a shared notebook -> a received version: Collector, People (roster by e-mail), Outcome,
                     course/slack_state.json
  api.py             `course collect slack`: the bot's channels, thread replies and DMs through the Web API
  export_archive.py  `course collect slack-export`: the same from a workspace export zip
  receipt_bot.py     `course slack-bot`: a receipt in the thread for each notebook sent (Socket Mode)
  send_feedback.py   `course feedback LAB --slack`: each student's score and feedback file by DM

Import from the module that does the job (autograder.slack.api.collect_slack, ...); this file re-exports nothing.
"""
