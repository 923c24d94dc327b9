/** A client of the controller's SearchService. */
import { controller } from '@metaprune/proto';
import { envClient, grpcClientOptions } from '@metaprune/runtime';

export type SearchClient = controller.SearchServiceClient;

/** TLS and token from METAPRUNE_TLS_CA / _CERT / _KEY / _SERVER_NAME and METAPRUNE_TOKEN. */
export function searchClient(address: string): SearchClient {
  const c = envClient(grpcClientOptions());
  return new controller.SearchServiceClient(address, c.credentials, c.options);
}
