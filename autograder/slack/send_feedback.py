"""`course feedback LAB --slack`: each graded student gets their score and feedback file by DM, once per change.

What was sent is remembered in slack_state.json (its "feedback" part) as a digest of the file and the score.
"""
import hashlib
from dataclasses import dataclass, field

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from ..course import Course, read_roster
from ..gradebook import load_result
from .collector import load_state, save_state


@dataclass
class FeedbackReport:
    sent: list = field(default_factory=list)       # (student, score text)
    unchanged: list = field(default_factory=list)  # students whose feedback was sent before
    problems: list = field(default_factory=list)


def send_feedback(course: Course, lab: str, client: WebClient) -> FeedbackReport:
    """DM each graded student their score and feedback file; feedback sent before and unchanged is not resent."""
    report, state = FeedbackReport(), load_state(course)
    roster, sent = read_roster(course.roster_path), state["feedback"].setdefault(lab, {})
    for student in course.submitted_students(lab):
        result = load_result(course, student, lab)
        paths = [p for name in course.notebooks(lab) if (p := course.feedback_file(student, lab, name)).exists()]
        if result is None or not paths:
            report.problems.append(f"{student}: no feedback for {lab} yet (run `course grade {lab}` and `course feedback {lab}`)")
            continue
        score = f"{result['score']:g} / {result['max_score']:g}"
        digest = hashlib.sha256(b"".join(p.read_bytes() for p in paths) + score.encode()).hexdigest()
        if sent.get(student) == digest:
            report.unchanged.append(student)
            continue
        person = roster.get(student)
        if person is None or not (person.email or person.extra.get("slack_id")):
            report.problems.append(f"{student}: feedback not sent: no e-mail (or slack_id) for them in "
                                   f"{course.roster_path.name}")
            continue
        try:
            user = person.extra.get("slack_id") or client.users_lookupByEmail(email=person.email)["user"]["id"]
            channel = client.conversations_open(users=user)["channel"]["id"]
            for i, path in enumerate(paths):  # one file per notebook of the assignment (our labs: one)
                title = lab if path.stem == lab else f"{lab} {path.stem}"
                client.files_upload_v2(channel=channel, file=str(path), filename=f"{title.replace(' ', '_')}_feedback.html",
                                       title=f"{title} feedback", **({} if i else {"initial_comment": (
                                           f"Your result for {lab}: {score} points. Your feedback is attached "
                                           "(open it in a browser).")}))
        except SlackClientError as exc:  # an API error, or the upload itself refused
            error = exc.response.get("error") if isinstance(exc, SlackApiError) else str(exc)
            hint = ("no Slack account has the roster's e-mail" if error == "users_not_found" else "re-run later")
            report.problems.append(f"{student}: feedback not sent: Slack answered {error} ({hint})")
            continue
        sent[student] = digest
        save_state(course, state)
        report.sent.append((student, score))
    return report
