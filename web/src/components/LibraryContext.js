// The global id of the signed-in user's library, for mutation updaters deep in the tree.
import { createContext, useContext } from "react";

export const LibraryContext = createContext(null);

export function useLibraryId() {
  return useContext(LibraryContext);
}
