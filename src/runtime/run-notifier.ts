/**
 * Tells the outside world that a run ended: its webhook (signed with WEBHOOK_SECRET, sent through
 * the egress policy, retried with backoff) and its email (through SMTP_URL, retried). Never throws
 * and never touches the run's outcome: each notification's result is logged and written to the
 * audit log as the system's own action.
 */
import type { Logger, ServiceBroker } from "moleculer";
import nodemailer, { type Transporter } from "nodemailer";
import { retryDelayMs } from "../domain/backoff";
import { runView, type StoredRun } from "../domain/pipelines/runs";
import type { AppConfig } from "../platform/config";
import { EVENTS, type AuditEntry } from "../types";
import { egressPolicy, redactUrl } from "./egress";
import { runEmail, sendWebhook, WEBHOOK_ATTEMPTS } from "./notifications";

const EMAIL_ATTEMPTS = 3;

export class RunNotifier {
	private mailer?: Transporter;

	constructor(private readonly broker: ServiceBroker, private readonly config: AppConfig, private readonly logger: Logger) {}

	async notify(run: StoredRun, pipelineName: string): Promise<void> {
		const jobs: Promise<void>[] = [];
		if (run.notification?.webhook) jobs.push(this.webhook(run.notification.webhook, run));
		if (run.notification?.email) jobs.push(this.email(run.notification.email, run, pipelineName));
		await Promise.all(jobs);
	}

	close(): void {
		this.mailer?.close();
	}

	private delay(attempt: number): number {
		return retryDelayMs(attempt, { baseMs: this.config.retryBaseDelayMs, maxMs: this.config.retryMaxDelayMs });
	}

	private async webhook(url: string, run: StoredRun): Promise<void> {
		const where = redactUrl(url);
		const secret = this.config.secrets.webhookSecret;
		if (!secret) {
			// Execute refuses a webhook without it; a run made elsewhere can still reach a node without it.
			this.logger.warn({ run: run.run_id, url: where }, "WEBHOOK_SECRET is not set: webhook notification not sent");
			this.audit("notification.webhook", "POST", run.run_id, where, false, 0);
			return;
		}
		const egress = egressPolicy(this.config);
		const outcome = await sendWebhook({
			url,
			body: JSON.stringify(runView(run)),
			secret,
			attempts: WEBHOOK_ATTEMPTS,
			delayMs: attempt => this.delay(attempt),
			fetch: (target, init) => egress.fetch(target, init)
		});
		if (!outcome.ok) this.logger.warn({ run: run.run_id, url: where, attempts: outcome.attempts, error: outcome.error }, "webhook notification failed");
		this.audit("notification.webhook", "POST", run.run_id, where, outcome.ok, outcome.status ?? 0);
	}

	private async email(to: string, run: StoredRun, pipelineName: string): Promise<void> {
		if (!this.config.smtpUrl) {
			this.logger.info({ run: run.run_id }, "SMTP_URL is not set: email notification skipped");
			return;
		}
		const mail = runEmail(pipelineName, runView(run));
		this.mailer ??= nodemailer.createTransport(this.config.smtpUrl);
		let lastError: unknown;
		for (let attempt = 1; attempt <= EMAIL_ATTEMPTS; attempt++) {
			try {
				await this.mailer.sendMail({ from: this.config.smtpFrom, to, subject: mail.subject, text: mail.text });
				this.audit("notification.email", "SMTP", run.run_id, `mailto:${to}`, true, 0);
				return;
			} catch (err) {
				lastError = err;
				if (attempt < EMAIL_ATTEMPTS) await new Promise(resolve => setTimeout(resolve, this.delay(attempt)).unref());
			}
		}
		this.logger.warn({ run: run.run_id, err: (lastError as Error)?.message }, "email notification failed");
		this.audit("notification.email", "SMTP", run.run_id, `mailto:${to}`, false, 0);
	}

	private audit(action: string, method: string, target: string, path: string, ok: boolean, status: number): void {
		const entry: Omit<AuditEntry, "id"> = {
			timestamp: new Date().toISOString(),
			actor: "system",
			roles: [],
			action,
			method,
			path,
			target,
			result: ok ? "success" : "failure",
			status,
			request_id: null,
			ip: null
		};
		this.broker.emit(EVENTS.audit, entry);
	}
}
