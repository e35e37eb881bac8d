/**
 * Who acted: the authenticated user and the address they came from. Every transport builds one per
 * request (HTTP route, gateway op, CLI command with `userId` of the account acted on); services
 * authorise against `userId` and record both in the audit log.
 */
export interface Actor {
  userId: string;
  ip?: string | null;
}
