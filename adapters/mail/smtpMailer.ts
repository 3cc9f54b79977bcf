import nodemailer from 'nodemailer';
import type { Mailer } from '../../delivery/ports.ts';

export type SmtpMailerOptions = {
  /** e.g. `smtp://user:pass@mail.example.com:587` or `smtps://…:465` (config's SMTP_URL). */
  url: string;
  /** The From header, e.g. `Incentable <webhooks@example.com>`. */
  from: string;
};

/** The Mailer port over nodemailer's SMTP transport; `close` releases pooled connections. */
export type SmtpMailer = Mailer & { close(): void };

/**
 * Sends plain-text mail through one SMTP server. Nodemailer errors are translated here (vendor
 * errors stop at the door): `send` rejects with an Error naming the SMTP response, never the URL
 * (it may carry credentials).
 */
export const createSmtpMailer = (options: SmtpMailerOptions): SmtpMailer => {
  const transport = nodemailer.createTransport(options.url);
  return {
    async send(message) {
      try {
        await transport.sendMail({
          from: options.from,
          to: message.to,
          subject: message.subject,
          text: message.text,
        });
      } catch (cause) {
        const detail = (cause as { response?: unknown }).response;
        throw new Error(
          `SMTP server refused the message${typeof detail === 'string' ? `: ${detail}` : ''}`,
          {
            cause,
          },
        );
      }
    },
    close() {
      transport.close();
    },
  };
};
