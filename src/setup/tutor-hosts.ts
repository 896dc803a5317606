// Tutor's container names for its MySQL and MongoDB (its defaults for MYSQL_HOST and MONGODB_HOST):
// they resolve only inside Tutor's Docker network, not on the host where panorama usually runs.
// `init --from-tutor` copies them and warns; a connection that fails to resolve one says why.

export const TUTOR_CONTAINER_HOSTS = { mysql: "mysql", mongodb: "mongodb" } as const;

/**
 * What to do about `host` in [`section`] when it is one of Tutor's container names, or undefined
 * for any other host.
 */
export function tutorContainerHostAdvice(section: "mysql" | "mongodb", host: string): string | undefined {
  if (!(Object.values(TUTOR_CONTAINER_HOSTS) as string[]).includes(host)) return undefined;
  return `"${host}" is Tutor's container name, which resolves only inside Tutor's Docker network: set [${section}] host = "127.0.0.1" and port to the port Tutor publishes it on, or run panorama inside that network`;
}
